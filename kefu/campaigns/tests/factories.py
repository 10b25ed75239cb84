"""Helpers of the bulk-message tests."""

from django.utils import timezone

from kefu.campaigns import services
from kefu.campaigns.models import Campaign
from kefu.campaigns.selectors import campaign_estimate


def launch_confirmed(actor, campaign: Campaign, **kwargs) -> Campaign:
    """Launch as a person does: confirming the number of recipients the page shows."""
    now = kwargs.get("now") or timezone.now()
    estimate = campaign_estimate(Campaign.objects.get(pk=campaign.pk), now=now)
    return services.campaign_launch(
        actor=actor, campaign_id=campaign.pk, confirm_count=estimate.recipients, **kwargs
    )
