"""When two customer records merge, store appointments follow the survivor."""

from django.dispatch import receiver

from kefu.customers.signals import customer_merged


@receiver(customer_merged, dispatch_uid="appointments_follow_merged_customer")
def appointments_follow_merged_customer(sender, *, target, duplicate, **kwargs) -> None:
    from kefu.appointments.models import Appointment

    Appointment.objects.filter(customer=duplicate).update(customer=target)
