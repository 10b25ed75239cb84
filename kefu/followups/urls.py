from django.urls import path

from kefu.followups import views

app_name = "followups"
urlpatterns = [
    path("", views.followup_list, name="followup_list"),
    path("<int:pk>/complete/", views.followup_complete, name="followup_complete"),
]
