from django.urls import path  # noqa: F401

app_name = "conversation_admin"

urlpatterns: list = []
