from django.urls import path

from kefu.tickets import views

app_name = "tickets"

urlpatterns = [
    path("", views.ticket_list, name="ticket_list"),
    path("<int:pk>/", views.ticket_detail, name="ticket_detail"),
]
