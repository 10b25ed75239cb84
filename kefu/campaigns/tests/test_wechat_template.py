"""WeChat template messages go out through the official account's API (a stand-in on
loopback plays api.weixin.qq.com)."""

import pytest

from kefu.campaigns import services
from kefu.campaigns.gateways import template_fields
from kefu.campaigns.models import CampaignRecipient, MessageTemplate
from kefu.campaigns.tests.factories import launch_confirmed
from kefu.conversations.tests.test_wechat import official_account, wechat_api  # noqa: F401
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


def test_template_fields_from_the_text():
    assert template_fields("尊敬的会员：\nkeyword1: 张三\nkeyword2：2026-12-01\n祝您生日快乐") == {
        "keyword1": {"value": "张三"},
        "keyword2": {"value": "2026-12-01"},
        "first": {"value": "尊敬的会员："},
        "remark": {"value": "祝您生日快乐"},
    }


def test_birthday_greeting_as_a_wechat_template_message(
    official_account,  # noqa: F811
    wechat_api,  # noqa: F811
    records_officer,
    settings,
):
    # given: WeChat template messages through the official account
    settings.CAMPAIGN_GATEWAYS = {"wechat": "wechat"}
    template = MessageTemplate.objects.create(
        name="生日模板消息",
        gateway="wechat",
        purpose="birthday",
        wechat_template_id="TPL-BIRTHDAY",
        body="{name}，生日快乐！\nkeyword1: {name}\nkeyword2: {birthday}\n{gift}",
        gift="凭此消息到门店领取礼品",
    )
    fan = make_customer(name="王芳", level="vip", phone=None)
    fan.contacts.create(kind="wechat_openid", value="oFAN-openid-1")
    segment = services.segment_save(actor=records_officer, name="VIP", filters={"levels": ["vip"]})
    campaign = services.campaign_create(
        actor=records_officer, data={"name": "模板", "template": template.pk, "segment": segment.pk}
    )
    launch_confirmed(records_officer, campaign)
    services.campaign_queue(campaign_id=campaign.pk)
    # when
    services.campaign_dispatch(campaign_id=campaign.pk, sleep=lambda s: None)
    # then
    sent = wechat_api.templates
    assert len(sent) == 1
    assert sent[0]["touser"] == "oFAN-openid-1"
    assert sent[0]["template_id"] == "TPL-BIRTHDAY"
    assert sent[0]["data"]["keyword1"]["value"] == "王芳"
    recipient = campaign.recipients.get()
    assert recipient.status == CampaignRecipient.Status.SENT
    assert recipient.provider_id == "200228332"
