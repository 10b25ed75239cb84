"""The web chat widget a company embeds: /chat/<code>/widget.js, the chat page and the session."""

from django.urls import path

from kefu.conversations import widget_views

app_name = "webchat"

urlpatterns = [
    path("<slug:code>/", widget_views.chat_page, name="chat_page"),
    path("<slug:code>/widget.js", widget_views.widget_script, name="widget_script"),
    path("<slug:code>/session", widget_views.chat_session, name="chat_session"),
]
