"""Fan-out from other apps: when two customer records merge, their chats, calls and channel
identities follow the survivor. A chat of the duplicate still open on a channel where the
survivor has one open too is closed first (one open conversation per customer and channel)."""

from django.dispatch import receiver
from django.utils import timezone

from kefu.customers.signals import customer_merged


@receiver(customer_merged, dispatch_uid="conversations_follow_merged_customer")
def conversations_follow_merged_customer(sender, *, target, duplicate, **kwargs) -> None:
    from kefu.conversations.models import CallRecord, ChannelIdentity, Conversation

    busy_channels = Conversation.objects.open().filter(customer=target).values("channel_id")
    Conversation.objects.open().filter(customer=duplicate, channel_id__in=busy_channels).update(
        status=Conversation.Status.CLOSED,
        closed_at=timezone.now(),
        outcome=Conversation.Outcome.NO_RESULT,
        outcome_note="Merged into the surviving customer record.",
        waiting_since=None,
    )
    Conversation.objects.filter(customer=duplicate).update(customer=target)
    CallRecord.objects.filter(customer=duplicate).update(customer=target)
    ChannelIdentity.objects.filter(customer=duplicate).update(customer=target)
