from django.urls import path

from kefu.jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("<int:pk>/", views.job_detail, name="job_detail"),
    path("<int:pk>/download/", views.job_download, name="job_download"),
    path("<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
]
