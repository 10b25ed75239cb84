"""Fan-out from other apps: when two customer records merge, their tickets follow the survivor."""

from django.dispatch import receiver

from kefu.customers.signals import customer_merged


@receiver(customer_merged, dispatch_uid="tickets_follow_merged_customer")
def tickets_follow_merged_customer(sender, *, target, duplicate, **kwargs) -> None:
    from kefu.followups.models import FollowUp
    from kefu.tickets.models import Ticket

    Ticket.objects.filter(customer=duplicate).update(customer=target)
    FollowUp.objects.filter(customer=duplicate).update(customer=target)
