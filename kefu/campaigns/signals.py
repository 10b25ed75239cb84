"""When two customer records merge, opt-outs and benefits follow the survivor (an opt-out of
either record holds for the merged one)."""

from django.dispatch import receiver

from kefu.customers.signals import customer_merged


@receiver(customer_merged, dispatch_uid="campaigns_follow_merged_customer")
def campaigns_follow_merged_customer(sender, *, target, duplicate, **kwargs) -> None:
    from kefu.campaigns.models import MemberBenefit, OptOut

    for optout in OptOut.objects.filter(customer=duplicate):
        if not OptOut.objects.filter(customer=target, channel=optout.channel).exists():
            OptOut.objects.filter(pk=optout.pk).update(customer=target)
    for benefit in MemberBenefit.objects.filter(customer=duplicate):
        if not MemberBenefit.objects.filter(
            customer=target, kind=benefit.kind, occasion=benefit.occasion
        ).exists():
            MemberBenefit.objects.filter(pk=benefit.pk).update(customer=target)
