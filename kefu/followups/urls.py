from django.urls import path

from kefu.followups import views

app_name = "followups"
urlpatterns = [
    path("", views.followup_list, name="followup_list"),
    path("<int:pk>/complete/", views.followup_complete, name="followup_complete"),
    path("<int:pk>/message/", views.followup_message, name="followup_message"),
    path("<int:pk>/call/", views.followup_call, name="followup_call"),
    path("<int:pk>/take/", views.followup_take, name="followup_take"),
    path("lists/", views.care_list_index, name="care_list_index"),
    path("lists/build/", views.care_list_build, name="care_list_build"),
    path("lists/<int:pk>/", views.care_list_detail, name="care_list_detail"),
]
