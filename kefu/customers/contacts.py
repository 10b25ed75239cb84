"""Normalizing, validating and masking contact values (phone, e-mail, WeChat, QQ)."""

import re
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

PHONE, EMAIL, WECHAT_OPENID, WECHAT_UNIONID, QQ = (
    "phone",
    "email",
    "wechat_openid",
    "wechat_unionid",
    "qq",
)
_QQ_RE = re.compile(r"^[1-9]\d{4,11}$")
_WECHAT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
# How people write a phone number: digits (also full-width), spaces, + - . and brackets.
_PHONE_WRITTEN_RE = re.compile(r"^[+＋]?[\d\s\-－.()（）]+$")


class ContactInvalid(ValueError):
    """The value cannot be a contact of that kind; the message says why."""


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """E.164 form of a phone number ('138 1234 5678' → '+8613812345678'); raises ContactInvalid."""
    text = (raw or "").strip()
    if not text:
        raise ContactInvalid(_("Enter a phone number."))
    if not _PHONE_WRITTEN_RE.match(text):
        # phonenumbers would skip leading letters ("abc139…") and read letters as keypad digits.
        raise ContactInvalid(
            _("“%(value)s” is not a phone number: use digits, spaces, +, - and brackets only.")
            % {"value": text}
        )
    try:
        number = phonenumbers.parse(text, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ContactInvalid(_("“%(value)s” is not a phone number.") % {"value": text}) from None
    if not phonenumbers.is_valid_number(number):
        raise ContactInvalid(_("“%(value)s” is not a valid phone number.") % {"value": text})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def contact_normalize(kind: str, raw: str) -> str:
    value = (raw or "").strip()
    if kind == PHONE:
        return phone_normalize(value)
    if kind == EMAIL:
        value = value.lower()
        try:
            validate_email(value)
        except ValidationError:
            raise ContactInvalid(
                _("“%(value)s” is not an e-mail address.") % {"value": value}
            ) from None
        return value
    if kind == QQ:
        if not _QQ_RE.match(value):
            raise ContactInvalid(_("A QQ number has 5 to 12 digits."))
        return value
    if kind in (WECHAT_OPENID, WECHAT_UNIONID):
        if not _WECHAT_ID_RE.match(value):
            raise ContactInvalid(_("“%(value)s” is not a WeChat id.") % {"value": value})
        return value
    raise ContactInvalid(_("Unknown contact kind “%(kind)s”.") % {"kind": kind})


@lru_cache(maxsize=4096)
def phone_national(value: str) -> str:
    """'+8613812345678' → '13812345678'; other countries keep their international form."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    if number.country_code == 86:
        return phonenumbers.national_significant_number(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def contact_display(kind: str, value: str) -> str:
    return phone_national(value) if kind == PHONE else value


def contact_mask(kind: str, value: str) -> str:
    """What a role without the full-contact permission sees: 138****1234, z***@qq.com, wx…9f."""
    if kind == PHONE:
        digits = phone_national(value)
        if len(digits) >= 7:
            return f"{digits[:3]}****{digits[-4:]}"
        return "****" + digits[-2:]
    if kind == EMAIL:
        local, _at, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(value) <= 4:
        return "****"
    return f"{value[:2]}****{value[-2:]}"


def phone_search_tokens(value: str) -> list[str]:
    """Tokens a phone number is found by: national digits, E.164 digits and the last four."""
    national = phone_national(value)
    digits = re.sub(r"\D", "", national)
    return [digits, value.lstrip("+"), digits[-4:]]
