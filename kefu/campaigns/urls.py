from django.urls import path

from kefu.campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("new/", views.campaign_create, name="campaign_create"),
    path("<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path("<int:pk>/launch/", views.campaign_launch, name="campaign_launch"),
    path("<int:pk>/cancel/", views.campaign_cancel, name="campaign_cancel"),
    path("<int:pk>/approve/", views.campaign_approve, name="campaign_approve"),
    path("<int:pk>/refuse/", views.campaign_refuse, name="campaign_refuse"),
    path("segments/", views.segment_list, name="segment_list"),
    path("segments/new/", views.segment_edit, name="segment_create"),
    path("segments/<int:pk>/", views.segment_edit, name="segment_edit"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/new/", views.template_edit, name="template_create"),
    path("templates/<int:pk>/", views.template_edit, name="template_edit"),
    path("templates/<int:pk>/test-send/", views.template_test_send, name="template_test_send"),
    path("outbox/", views.outbox_list, name="outbox_list"),
    path("optout/", views.optout_create, name="optout_create"),
    path("optouts/", views.optout_list, name="optout_list"),
    path("benefits/", views.benefit_list, name="benefit_list"),
    path("benefits/new/", views.benefit_create, name="benefit_create"),
]
