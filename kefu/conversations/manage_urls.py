from django.urls import path

from kefu.conversations import manage_views as views

app_name = "conversation_admin"

urlpatterns = [
    path("calls/", views.call_list, name="call_list"),
    path("calls/new/", views.call_create, name="call_create"),
    path("quick-replies/", views.quickreply_list, name="quickreply_list"),
    path("quick-replies/<int:pk>/edit/", views.quickreply_edit, name="quickreply_edit"),
    path("quick-replies/<int:pk>/delete/", views.quickreply_delete, name="quickreply_delete"),
]
