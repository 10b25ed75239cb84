from django.urls import path

from kefu.tickets import report_views

app_name = "ticket_reports"

urlpatterns = [
    path("complaints/", report_views.complaint_summary_page, name="complaint_summary"),
    path("complaints/export/", report_views.complaint_summary_export, name="complaint_export"),
]
