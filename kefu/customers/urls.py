from django.urls import path

from kefu.customers import transfer_views, views

app_name = "customers"
urlpatterns = [
    path("", views.customer_list, name="customer_list"),
    path("new/", views.customer_create, name="customer_create"),
    path("import/", transfer_views.customer_import, name="customer_import"),
    path(
        "import/<int:job_id>/confirm/",
        transfer_views.customer_import_confirm_view,
        name="customer_import_confirm",
    ),
    path(
        "import/<int:job_id>/check-again/",
        transfer_views.customer_import_recheck_view,
        name="customer_import_recheck",
    ),
    path("export/", transfer_views.customer_export, name="customer_export"),
    path("<int:pk>/", views.customer_detail, name="customer_detail"),
    path("<int:pk>/edit/", views.customer_edit, name="customer_edit"),
    path("<int:pk>/lifecycle/", views.customer_lifecycle, name="customer_lifecycle"),
    path("<int:pk>/merge/", views.customer_merge, name="customer_merge"),
    path("<int:pk>/contacts/", views.customer_contact_add, name="customer_contact_add"),
    path(
        "<int:pk>/contacts/<int:contact_id>/remove/",
        views.customer_contact_remove,
        name="customer_contact_remove",
    ),
    path(
        "<int:pk>/contacts/<int:contact_id>/reveal/",
        views.customer_contact_reveal,
        name="customer_contact_reveal",
    ),
]
