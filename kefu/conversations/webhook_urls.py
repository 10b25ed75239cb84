"""Platform bridges post customer messages here: /channels/hook/<channel code>/."""

from django.urls import path

from kefu.conversations import webhook_views

app_name = "webhooks"

urlpatterns = [
    path("<slug:code>/", webhook_views.webhook_receive, name="webhook_receive"),
]
