from django.contrib import admin
from django.urls import include, path

from kefu.core.api import api

urlpatterns = [
    path("", include("kefu.core.urls")),
    path("accounts/", include("kefu.accounts.urls")),
    path("customers/", include("kefu.customers.urls")),
    path("tickets/reports/", include("kefu.tickets.report_urls")),
    path("tickets/", include("kefu.tickets.urls")),
    path("followups/", include("kefu.followups.urls")),
    path("inbox/", include("kefu.conversations.urls")),
    path("consultations/", include("kefu.conversations.manage_urls")),
    path("chat/", include("kefu.conversations.widget_urls")),
    path("files/", include("kefu.conversations.files")),
    path("channels/wechat/", include("kefu.conversations.wechat_urls")),
    path("channels/hook/", include("kefu.conversations.webhook_urls")),
    path("campaigns/", include("kefu.campaigns.urls")),
    path("appointments/", include("kefu.appointments.urls")),
    path("notifications/", include("kefu.notifications.urls")),
    path("jobs/", include("kefu.jobs.urls")),
    path("s/", include("kefu.tickets.public_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]

handler403 = "kefu.core.views.permission_denied"
handler404 = "kefu.core.views.page_not_found"
