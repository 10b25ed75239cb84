"""The pages read right in Chinese: one English word used with two meanings gets a message
context, Kefu's catalog does not change the meaning of Django's own words (the administration
site's 修改), and a too long value names its field in plain Chinese."""

import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

from kefu.core.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db

CATALOG = Path(settings.BASE_DIR) / "kefu/locale/zh_Hans/LC_MESSAGES/django.po"
DJANGO = Path(__import__("django").__file__).parent
DJANGO_CATALOGS = [
    DJANGO / "conf/locale/zh_Hans/LC_MESSAGES/django.po",
    *(
        DJANGO / f"contrib/{app}/locale/zh_Hans/LC_MESSAGES/django.po"
        for app in ("admin", "auth", "contenttypes", "humanize", "sessions")
    ),
]
# Kefu's catalog wins over Django's (LOCALE_PATHS are merged last). These words Kefu translates
# on purpose, in a way that fits Django's use of them as well.
REVIEWED_OVERRIDES = {
    "active": "启用 fits the administration site's user list as well as 有效",
    "Filter": "筛选 is the usual word for the admin's filter sidebar too",
    "Image": "图片 and 图像 mean the same",
    "Add": "添加 and 增加 mean the same",
    "This field is required.": "plainer than Django's 这个字段是必填项",
    "Administration": "系统管理, as in the navigation",
    "Email": "a contact channel; Django's form label is not used",
    "Enter a number.": "polite form of the same",
    "Action": "操作 is the usual word for the admin's bulk actions too",
    "Log out": "退出登录 and 注销 mean the same",
    "Ensure this value has at most %(limit_value)d character (it has %(show_value)d).": (
        "Django's 确保该变量… is machine Chinese (kefu.core.forms)"
    ),
    "Ensure this value has at least %(limit_value)d character (it has %(show_value)d).": (
        "Django's 确保该变量… is machine Chinese (kefu.core.forms)"
    ),
    # The API's validation messages (kefu.core.api) reuse Django's words, politer and plainer;
    # Django's forms read them the same way.
    "Enter a valid value.": "polite form of the same",
    "Enter a whole number.": "polite form of the same",
    "Enter a valid date.": "polite form of the same",
    "Enter a valid date/time.": "polite form of the same",
    "Enter a list of values.": "polite form of the same",
    "Ensure this value is less than or equal to %(limit_value)s.": "plainer than 确保该值…",
    "Ensure this value is greater than or equal to %(limit_value)s.": "plainer than 确保该值…",
}


def _translation(entry: polib.POEntry):
    return entry.msgstr or dict(entry.msgstr_plural)


def test_kefu_s_catalog_keeps_the_meaning_of_django_s_words():
    """A word of Kefu's pages that Django uses too (Change, View, Order...) gets a context, so
    the administration site keeps Django's translation: the admin's Change read 变化."""
    ours = {(e.msgctxt, e.msgid): e for e in polib.pofile(str(CATALOG)) if not e.obsolete}
    changed = {}
    for path in DJANGO_CATALOGS:
        for entry in polib.pofile(str(path)):
            key = (entry.msgctxt, entry.msgid)
            if key in ours and _translation(entry):
                mine = _translation(ours[key])
                if mine != _translation(entry) and entry.msgid not in REVIEWED_OVERRIDES:
                    changed[entry.msgid] = (mine, _translation(entry))
    assert changed == {}


def _client(user) -> Client:
    client = Client(headers={"accept-language": "zh-hans"})
    client.force_login(user)
    return client


def _headers(html: str) -> list[str]:
    head = re.search(r"<thead>(.*?)</thead>", html, re.S).group(1)
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)
    ]


def test_segment_list_headers(records_officer):
    html = _client(records_officer).get(reverse("campaigns:segment_list")).content.decode()
    assert _headers(html)[:4] == ["名称", "人群条件", "创建人", "更新时间"]


def test_message_templates_have_a_purpose_not_a_follow_up_type(records_officer):
    html = _client(records_officer).get(reverse("campaigns:template_list")).content.decode()
    assert _headers(html)[:4] == ["名称", "发送通道", "用途", "正文"]
    form = _client(records_officer).get(reverse("campaigns:template_create")).content.decode()
    assert "用途" in form
    assert "回访类型" not in form


def test_bookings_have_a_reason_for_the_visit_and_a_query_button(agent, store):
    client = _client(agent)
    listing = client.get(
        reverse("appointments:appointment_list"), {"store": store.pk}
    ).content.decode()
    assert "预约事由" in _headers(listing)
    assert '<button type="submit">查询</button>' in listing
    booking = client.get(reverse("appointments:appointment_book")).content.decode()
    assert "预约事由" in booking
    assert "回访类型" not in booking
    assert "验光" not in booking  # the placeholder is a pharmacy's
    for page in (listing, booking):
        assert "查看完整" not in page


def test_filter_buttons_say_query(supervisor, manager):
    followups = (
        _client(supervisor).get(reverse("followups:followup_list"), {"scope": "all"}).content
    ).decode()
    assert '<button type="submit">查询</button>' in followups
    funnel = _client(manager).get(reverse("appointments:appointment_funnel")).content.decode()
    assert '<button type="submit">查询</button>' in funnel


def test_the_complaint_summary_moves_by_period_not_by_page(manager):
    html = _client(manager).get(reverse("ticket_reports:complaint_summary")).content.decode()
    assert "‹ 上一期" in html
    assert "上一页" not in html
    assert '<button type="submit">查询</button>' in html
    assert _headers(html) == ["指标", "本期", "上期", "变化"]


def test_the_administration_site_says_change_as_django_does(administrator):
    html = _client(administrator).get(reverse("admin:index")).content.decode()
    assert ">修改<" in html
    assert "变化" not in html


def test_a_consultation_without_outcome_asks_for_the_consultation_s_result(web_chat, online_agent):
    from kefu.conversations.adapters import Inbound, Sender
    from kefu.conversations.services import conversation_close, message_receive

    received = message_receive(
        channel=web_chat, inbound=Inbound(sender=Sender(key="visitor:1"), body="在吗")
    )
    with translation.override("zh-hans"), pytest.raises(ValidationFailed) as exc:
        conversation_close(
            actor=online_agent,
            conversation_id=received.conversation.pk,
            topic="营业时间",
            outcome="",
        )
    assert exc.value.errors["outcome"] == ["请选择咨询结果。"]


def test_a_too_long_name_is_named_in_plain_chinese(records_officer):
    response = _client(records_officer).post(
        reverse("campaigns:segment_create"), {"name": "会员" * 60}
    )
    html = response.content.decode()
    assert "名称：最多 100 个字符，已输入 120 个。" in html
    assert "确保该变量" not in html


def test_the_administration_site_s_length_error_is_plain_chinese(administrator):
    from kefu.accounts.models import Team

    response = _client(administrator).post(reverse("admin:accounts_team_add"), {"name": "组" * 200})
    html = response.content.decode()
    limit = Team._meta.get_field("name").max_length
    assert f"最多 {limit} 个字符，已输入 200 个。" in html
    assert "确保该变量" not in html
