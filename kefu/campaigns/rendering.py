"""A template filled for one customer, as the customer gets it: the variables, and for SMS the
sender signature and (marketing only) the opt-out footer."""

import datetime as dt
import re

from kefu.campaigns.models import Gateway, MessageTemplate
from kefu.campaigns.sms import sms_compose
from kefu.customers.models import ContactPoint, Customer

VARIABLES = ("name", "number", "store", "birthday", "holiday", "gift", "date")
VARIABLE = re.compile(r"\{(\w+)\}")
CONTACT_KIND = {
    Gateway.SMS: ContactPoint.Kind.PHONE,
    Gateway.EMAIL: ContactPoint.Kind.EMAIL,
    Gateway.WECHAT: ContactPoint.Kind.WECHAT_OPENID,
}


def render(
    template: MessageTemplate,
    customer: Customer,
    *,
    today: dt.date,
    holiday: str = "",
    gift: str = "",
    marker: str = "",
) -> tuple[str, str]:
    """Subject and body of the template for one customer. `marker` ("[测试]") goes before the
    text, after an SMS signature."""
    values = {
        "name": customer.name,
        "number": customer.number,
        "store": customer.store.name if customer.store_id and customer.store else "",
        "birthday": f"{customer.birthday.month}月{customer.birthday.day}日"
        if customer.birthday
        else "",
        "holiday": holiday,
        "gift": "",
        "date": f"{today.year}年{today.month}月{today.day}日",
    }
    fill = lambda text: VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)  # noqa: E731
    values["gift"] = fill(gift or template.gift)  # "凭短信到{store}领取" names the store too
    body = fill(template.body)
    if template.gateway == Gateway.SMS:
        body = sms_compose(
            body, kind=template.gateway, marketing=template.is_marketing, marker=marker
        )
    elif marker and template.gateway != Gateway.EMAIL:
        body = f"{marker} {body}"
    return fill(template.subject), body
