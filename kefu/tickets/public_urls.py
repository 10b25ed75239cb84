"""The customer's side: the ticket status page behind a signed link (no login, no namespace, so
status_links.status_path_for can reverse "ticket_status")."""

from django.urls import path

from kefu.tickets import public_views

urlpatterns = [
    path("t/<str:token>/", public_views.ticket_status, name="ticket_status"),
]
