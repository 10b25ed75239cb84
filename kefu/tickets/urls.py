from django.urls import path

from kefu.tickets import views

app_name = "tickets"

urlpatterns = [
    path("", views.ticket_list, name="ticket_list"),
    path("new/", views.ticket_create, name="ticket_create"),
    path("new/customers/", views.ticket_customer_search, name="ticket_customer_search"),
    path("handoffs/", views.handoff_list, name="handoff_list"),
    path("duty/", views.queue_duty, name="queue_duty"),
    path("<int:pk>/", views.ticket_detail, name="ticket_detail"),
    path("<int:pk>/call/", views.ticket_call, name="ticket_call"),
    path(
        "<int:pk>/attachments/<int:attachment_id>/",
        views.ticket_attachment,
        name="ticket_attachment",
    ),
    # One POST URL per action panel: tickets:ticket_assign, tickets:ticket_hand_off, ...
    *[
        path(
            f"<int:pk>/{action.replace('_', '-')}/",
            views.ticket_action,
            {"action": action},
            name=f"ticket_{action}",
        )
        for action in views.ACTIONS
    ],
]
