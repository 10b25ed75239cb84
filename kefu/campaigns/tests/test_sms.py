"""Chinese SMS: the 【签名】 signature, the 回T退订 footer of marketing messages only, counting SMS
segments as providers bill them, and reading quiet hours."""

import datetime as dt

import pytest
from django.utils import translation

from kefu.campaigns import sms
from kefu.campaigns.models import MessageTemplate
from kefu.campaigns.rendering import render
from kefu.customers.models import Customer
from kefu.tickets.tests.fixtures import at

TODAY = dt.date(2026, 12, 1)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("a" * 160, 1),  # GSM 7-bit: 160 in one
        ("a" * 161, 2),  # then 153 a part
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("{" * 80, 1),  # an extension character counts two
        ("{" * 81, 2),
        ("好" * 70, 1),  # UCS-2: 70 in one
        ("好" * 71, 2),  # then 67 a part
        ("好" * 134, 2),
        ("好" * 135, 3),
        ("a" * 69 + "好", 1),  # one Chinese character makes the whole text UCS-2
        ("a" * 70 + "好", 2),
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_sms_segments(text, segments):
    assert sms.sms_segments(text) == segments


def test_the_signature_takes_brackets_or_not(settings):
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    assert sms.signature("sms") == "【康宁大药房】"
    settings.CAMPAIGN_SIGNATURES = {"sms": " 【康宁大药房】 "}
    assert sms.signature("sms") == "【康宁大药房】"
    settings.CAMPAIGN_SIGNATURES = {"sms": ""}
    assert sms.signature("sms") == ""
    assert sms.signature("email") == ""


def _template(purpose: str, body: str) -> MessageTemplate:
    return MessageTemplate(name="t", gateway="sms", purpose=purpose, body=body)


def test_a_marketing_sms_has_the_signature_first_and_the_chinese_footer_last(settings):
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    customer = Customer(name="王芳", number="KH1")
    template = _template("promotion", "{name}您好，本周六会员日全场9折。")
    # even for a member of staff reading the page in English, the customer's text is Chinese
    with translation.override("en"):
        _subject, body = render(template, customer, today=TODAY)
    assert body == "【康宁大药房】王芳您好，本周六会员日全场9折。回T退订"
    assert sms.sms_segments(body) == 1


def test_a_transactional_sms_has_the_signature_and_no_footer(settings):
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    customer = Customer(name="王芳", number="KH1")
    for purpose in ("reminder", "appointment_reminder", "verification"):
        template = _template(purpose, "{name}您好，您预约的到店时间是明天上午10点")
        assert not template.is_marketing
        _subject, body = render(template, customer, today=TODAY)
        assert body == "【康宁大药房】王芳您好，您预约的到店时间是明天上午10点"


def test_the_footer_is_configurable(settings):
    settings.SMS_OPTOUT_TEXT = "拒收请回复R"
    template = _template("health_tip", "天冷注意保暖")
    _subject, body = render(template, Customer(name="王芳", number="KH1"), today=TODAY)
    assert body == "天冷注意保暖 拒收请回复R"


def test_signature_and_footer_count_towards_the_segments(settings):
    """A 64-character text fits one SMS alone; with 【康宁大药房】 and 回T退订 it takes two."""
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    text = "好" * 63 + "。"
    template = _template("promotion", text)
    _subject, body = render(template, Customer(name="王芳", number="KH1"), today=TODAY)
    assert sms.sms_segments(text) == 1
    assert sms.sms_length(body) == 64 + 7 + 4
    assert sms.sms_segments(body) == 2


@pytest.mark.django_db
def test_the_gift_text_is_filled_too(store):
    template = MessageTemplate(
        name="t", gateway="email", purpose="birthday", body="{name}生日快乐！{gift}"
    )
    template.gift = "凭本消息到{store}领取礼品。"
    customer = Customer(name="王芳", number="KH1", store=store)
    _subject, body = render(template, customer, today=TODAY)
    assert body == "王芳生日快乐！凭本消息到人民路店领取礼品。"


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [("21:00-08:00", dt.time(21), dt.time(8)), ("12:30–13:30", dt.time(12, 30), dt.time(13, 30))],
)
def test_quiet_hours_are_read(value, start, end):
    assert sms.quiet_hours_parse(value) == sms.QuietHours(start, end)


@pytest.mark.parametrize("value", ["9pm-8am", "25:00-08:00", "08:00-08:00", "21:00"])
def test_bad_quiet_hours_are_refused(value):
    with pytest.raises(ValueError, match=r"HH:MM-HH:MM|same time"):
        sms.quiet_hours_parse(value)


def test_quiet_hours_across_midnight_end_the_next_morning():
    hours = sms.QuietHours(dt.time(21), dt.time(8))
    evening = at(2026, 12, 1, 22, 30)
    morning = at(2026, 12, 2, 7, 18)
    day = at(2026, 12, 2, 8, 0)
    eight = at(2026, 12, 2, 8)
    assert hours.ends_after(evening) == eight
    assert hours.ends_after(morning) == eight
    assert hours.ends_after(day) is None
