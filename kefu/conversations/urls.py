"""The agent's inbox pages, mounted at /inbox/."""

from django.urls import path

from kefu.conversations import views

app_name = "conversations"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("status/", views.agent_status, name="agent_status"),
    path("<int:pk>/", views.conversation_detail, name="conversation_detail"),
    path("<int:pk>/send/", views.message_send, name="message_send"),
    path("<int:pk>/note/", views.note_add, name="note_add"),
    path("<int:pk>/transfer/", views.conversation_transfer, name="conversation_transfer"),
    path("<int:pk>/close/", views.conversation_close, name="conversation_close"),
    path("<int:pk>/call/", views.conversation_call, name="conversation_call"),
    path("<int:pk>/ticket/", views.conversation_open_ticket, name="conversation_open_ticket"),
    path("<int:pk>/quick-replies/", views.quick_reply_suggest, name="quick_reply_suggest"),
    path(
        "<int:pk>/messages/<int:message_id>/file/",
        views.message_attachment,
        name="message_attachment",
    ),
]
