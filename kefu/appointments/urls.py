from django.urls import path

from kefu.appointments import views

app_name = "appointments"
urlpatterns = [
    path("", views.appointment_list, name="appointment_list"),
    path("book/", views.appointment_book, name="appointment_book"),
    path("book/customers/", views.appointment_customer_search, name="appointment_customer_search"),
    path("funnel/", views.appointment_funnel_view, name="appointment_funnel"),
    path("<int:pk>/", views.appointment_detail, name="appointment_detail"),
    path("<int:pk>/visit/", views.appointment_visit, name="appointment_visit"),
    path("<int:pk>/cancel/", views.appointment_cancel, name="appointment_cancel"),
]
