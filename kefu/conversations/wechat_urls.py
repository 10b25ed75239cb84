from django.urls import path

from kefu.conversations import wechat_views

app_name = "wechat"

urlpatterns = [
    path("<slug:code>/", wechat_views.wechat_callback, name="callback"),
]
