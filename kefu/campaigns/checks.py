"""Start-up checks of the bulk-message settings (`manage.py check`, `kefu run`)."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from kefu.campaigns import sms


@register()
def sms_settings_check(app_configs=None, **kwargs) -> list:
    problems = []
    try:
        sms.quiet_hours_parse(settings.SMS_QUIET_HOURS)
    except ValueError as exc:
        problems.append(
            Error(
                f"KEFU_SMS_QUIET_HOURS: {exc}.",
                hint="Write it as 21:00-08:00 (in TIME_ZONE), or leave it empty for none.",
                id="kefu.campaigns.E001",
            )
        )
    mark = sms.signature("sms")
    provider = settings.CAMPAIGN_GATEWAYS.get("sms", "outbox") != "outbox"
    if not mark and provider:
        problems.append(
            Warning(
                "KEFU_SMS_SIGNATURE is not set: SMS go out without the sender signature "
                "(【签名】) Chinese providers require, and campaigns cannot be sent through a "
                "provider.",
                hint="Set it to the signature registered with your SMS provider.",
                id="kefu.campaigns.W001",
            )
        )
    elif mark and not 2 <= len(mark) - 2 <= 12:
        problems.append(
            Warning(
                f"KEFU_SMS_SIGNATURE {mark} is not 2 to 12 characters: providers refuse it.",
                id="kefu.campaigns.W002",
            )
        )
    return problems
