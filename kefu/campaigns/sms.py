"""What Chinese bulk SMS need: the sender signature (【签名】), the opt-out footer of marketing
messages (回T退订), quiet hours for marketing messages, and counting the SMS segments a text
takes, as providers bill them.

A text of GSM 7-bit characters only (plain Latin) fits 160 characters in one SMS and 153 per part
when longer; any other text (Chinese, and the 【】 of the signature) is sent as UCS-2: 70
characters in one SMS, 67 per part. The signature and the footer count.
"""

import dataclasses
import datetime as dt
import math
import re

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import pgettext

# GSM 03.38: the basic set (one septet each) and the extension table (an escape and one more).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
SINGLE = {"gsm7": 160, "ucs2": 70}
PART = {"gsm7": 153, "ucs2": 67}
_BRACKETS = "【】[]"
_ENDS_A_SENTENCE = re.compile(r"[。！？!?.，,；;）)~～]$")


def sms_encoding(text: str) -> str:
    """The encoding the text goes as: "gsm7" when every character is in the GSM 7-bit alphabet,
    else "ucs2"."""
    return "gsm7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "ucs2"


def sms_length(text: str) -> int:
    """Characters as the network counts them: septets (an extension character is two) or UTF-16
    code units (a character outside the BMP, such as an emoji, is two)."""
    if sms_encoding(text) == "gsm7":
        return sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def sms_segments(text: str) -> int:
    """How many SMS the text goes out as (and is billed as)."""
    if not text:
        return 0
    encoding = sms_encoding(text)
    length = sms_length(text)
    if length <= SINGLE[encoding]:
        return 1
    return math.ceil(length / PART[encoding])


def signature(kind: str) -> str:
    """The gateway's sender signature in 【】, or "" when none is set."""
    raw = str(settings.CAMPAIGN_SIGNATURES.get(kind, "") or "").strip().strip(_BRACKETS).strip()
    return f"【{raw}】" if raw else ""


def optout_footer() -> str:
    """The opt-out hint of marketing SMS: KEFU_SMS_OPTOUT_TEXT, else 回T退订 in the department's
    language (customers read it, whatever language the member of staff uses)."""
    if settings.SMS_OPTOUT_TEXT:
        return settings.SMS_OPTOUT_TEXT
    with translation.override(settings.LANGUAGE_CODE):
        return pgettext("SMS opt-out footer", "Reply T to unsubscribe")


def sms_compose(body: str, *, kind: str = "sms", marketing: bool, marker: str = "") -> str:
    """The text as the customer gets it: 【签名】, an optional marker (a test), the body, and the
    opt-out footer for marketing messages."""
    text = f"{signature(kind)}{marker}{body.strip()}"
    if marketing:
        footer = optout_footer()
        if footer:
            text += footer if _ENDS_A_SENTENCE.search(text) else f" {footer}"
    return text


# --- Quiet hours ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class QuietHours:
    """A daily period without marketing messages, in the department's time zone; it may run past
    midnight (21:00-08:00)."""

    start: dt.time
    end: dt.time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    def contains(self, moment: dt.time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def ends_after(self, now: dt.datetime) -> dt.datetime | None:
        """When the quiet period `now` falls in ends; None when `now` is not quiet."""
        local = timezone.localtime(now)
        if not self.contains(local.time().replace(tzinfo=None)):
            return None
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += dt.timedelta(days=1)
        return timezone.make_aware(dt.datetime.combine(day, self.end))

    def next_start(self, now: dt.datetime) -> dt.datetime:
        """The next moment a quiet period begins (today or tomorrow)."""
        local = timezone.localtime(now)
        start = timezone.make_aware(dt.datetime.combine(local.date(), self.start))
        return start if start > now else start + dt.timedelta(days=1)


_QUIET = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})\s*$")


def quiet_hours_parse(value: str) -> QuietHours | None:
    """Read quiet hours written as "21:00-08:00"; "" is none. Raises ValueError otherwise."""
    if not value.strip():
        return None
    found = _QUIET.match(value)
    if found is None:
        raise ValueError(f"{value!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    try:
        start, end = dt.time(h1, m1), dt.time(h2, m2)
    except ValueError:
        raise ValueError(f"{value!r} is not HH:MM-HH:MM") from None
    if start == end:
        raise ValueError(f"{value!r} starts and ends at the same time")
    return QuietHours(start, end)


def quiet_hours(kind: str) -> QuietHours | None:
    """The quiet hours of marketing messages on a gateway (SMS: KEFU_SMS_QUIET_HOURS)."""
    if kind != "sms":
        return None
    try:
        return quiet_hours_parse(settings.SMS_QUIET_HOURS)
    except ValueError:
        # The system check reports it; meanwhile keep to the usual 21:00-08:00.
        return QuietHours(dt.time(21), dt.time(8))


def quiet_until(kind: str, *, marketing: bool, now: dt.datetime) -> dt.datetime | None:
    """When a message of this kind may go out if `now` is in its quiet hours; None: now."""
    if not marketing:
        return None
    hours = quiet_hours(kind)
    return hours.ends_after(now) if hours else None
