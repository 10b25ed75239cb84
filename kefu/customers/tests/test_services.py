import datetime as dt

import pytest

from kefu.audit.models import AuditEntry
from kefu.core.exceptions import Forbidden, ValidationFailed
from kefu.customers import services
from kefu.customers.exceptions import (
    ContactTaken,
    CustomerMergeNotAllowed,
    CustomerNotFound,
    LifecycleChangeNotAllowed,
)
from kefu.customers.models import ContactPoint, Customer, CustomerEvent, CustomFieldDefinition
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


def test_customer_create_assigns_number_normalizes_phone_and_records_history(agent, store):
    # when
    customer = services.customer_create(
        actor=agent,
        data={"name": "王小明", "level": "vip", "store": store, "birthday": dt.date(1980, 2, 29)},
        contacts=[
            {"kind": "phone", "value": "138 1234 5678"},
            {"kind": "email", "value": "Wang@Example.com"},
        ],
        addresses=[{"province": "浙江省", "city": "杭州市", "detail": "人民路1号"}],
        tags=["慢病", "高血压"],
    )
    # then
    assert customer.number.startswith("KH")
    assert len(customer.number) == 10
    assert customer.status == Customer.Status.PROSPECT
    phone = customer.contacts.get(kind="phone")
    assert phone.value == "+8613812345678"
    assert phone.last4 == "5678"
    assert phone.is_primary
    assert customer.contacts.get(kind="email").value == "wang@example.com"
    assert sorted(customer.tags.values_list("name", flat=True)) == ["慢病", "高血压"]
    assert customer.addresses.get().city == "杭州市"
    assert customer.events.get().kind == CustomerEvent.Kind.CREATED
    audit = AuditEntry.objects.get(action="customer.created", target_id=str(customer.pk))
    assert audit.actor == agent
    assert audit.changes["name"] == [None, "王小明"]
    assert audit.changes["contacts"] == [None, ["138****5678", "w***@example.com"]]


def test_customer_numbers_are_never_reused(agent):
    first = make_customer(actor=agent, name="甲")
    first_number = first.number
    first.delete()
    second = make_customer(actor=agent, name="乙")
    assert second.number != first_number
    assert int(second.number[2:]) == int(first_number[2:]) + 1


def test_duplicate_phone_is_refused_pointing_to_existing_customer(agent, customer):
    with pytest.raises(ContactTaken) as exc:
        services.customer_create(
            actor=agent,
            data={"name": "李四"},
            contacts=[{"kind": "phone", "value": "+86 138-1234-1234"}],
        )
    assert exc.value.status == 409
    assert exc.value.extra["existing"]["number"] == customer.number
    assert customer.number in str(exc.value.message)
    assert "contacts.0.value" in exc.value.errors
    assert Customer.objects.count() == 1


@pytest.mark.parametrize(
    ("kind", "value"),
    [("wechat_openid", "oWx1234567890abc"), ("qq", "123456789"), ("email", "a@b.cn")],
)
def test_channel_identity_belongs_to_one_customer(agent, kind, value):
    first = services.customer_create(
        actor=agent, data={"name": "甲"}, contacts=[{"kind": kind, "value": value}]
    )
    with pytest.raises(ContactTaken) as exc:
        services.customer_create(
            actor=agent, data={"name": "乙"}, contacts=[{"kind": kind, "value": value}]
        )
    assert exc.value.extra["existing"]["id"] == first.pk


def test_create_reports_every_bad_field_and_writes_nothing(agent):
    with pytest.raises(ValidationFailed) as exc:
        services.customer_create(
            actor=agent,
            data={"name": " ", "level": "gold", "birthday": dt.date(2999, 1, 1)},
            contacts=[{"kind": "phone", "value": "12345"}, {"kind": "email", "value": "nope"}],
        )
    errors = exc.value.errors
    assert set(errors) >= {"name", "level", "birthday", "contacts.0.value", "contacts.1.value"}
    assert Customer.objects.count() == 0
    assert AuditEntry.objects.filter(action="customer.created").count() == 0


def test_custom_fields_are_checked_against_definitions(agent):
    CustomFieldDefinition.objects.create(
        key="chronic", label="慢病类型", field_type="choice", choices=["高血压", "糖尿病"]
    )
    CustomFieldDefinition.objects.create(
        key="room", label="房号", field_type="text", is_required=True
    )
    with pytest.raises(ValidationFailed) as exc:
        services.customer_create(
            actor=agent, data={"name": "甲", "custom_fields": {"chronic": "感冒", "x": 1}}
        )
    assert set(exc.value.errors) == {
        "custom_fields.chronic",
        "custom_fields.x",
        "custom_fields.room",
    }
    c = services.customer_create(
        actor=agent, data={"name": "甲", "custom_fields": {"chronic": "糖尿病", "room": "3-101"}}
    )
    assert c.custom_fields == {"chronic": "糖尿病", "room": "3-101"}


def test_update_audits_before_and_after(manager, customer):
    services.customer_update(
        actor=manager,
        customer_id=customer.pk,
        data={"level": "key_account", "notes": "偏好电话"},
        tags=["慢病", "VIP日"],
    )
    entry = AuditEntry.objects.get(action="customer.updated")
    assert entry.actor == manager
    assert entry.changes["level"] == ["normal", "key_account"]
    assert entry.changes["notes"] == ["", "偏好电话"]
    assert entry.changes["tags"] == [["慢病"], ["VIP日", "慢病"]]
    assert customer.events.filter(kind="updated").exists()


def test_update_without_changes_writes_no_audit(manager, customer):
    services.customer_update(actor=manager, customer_id=customer.pk, data={"name": customer.name})
    assert not AuditEntry.objects.filter(action="customer.updated").exists()


def test_lifecycle_history_and_rules(agent, customer):
    services.customer_change_lifecycle(
        actor=agent, customer_id=customer.pk, status="customer", reason="首单"
    )
    services.customer_change_lifecycle(
        actor=agent,
        customer_id=customer.pk,
        status="member",
        now=dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC),
    )
    customer.refresh_from_db()
    assert customer.status == "member"
    assert customer.member_since == dt.date(2026, 5, 1)
    history = list(
        customer.events.filter(kind="lifecycle_changed")
        .order_by("id")
        .values_list("data", flat=True)
    )
    assert [(h["from"], h["to"]) for h in history] == [
        ("prospect", "customer"),
        ("customer", "member"),
    ]
    with pytest.raises(LifecycleChangeNotAllowed):
        services.customer_change_lifecycle(actor=agent, customer_id=customer.pk, status="member")
    services.customer_change_lifecycle(
        actor=agent, customer_id=customer.pk, status="closed", reason="销户"
    )
    with pytest.raises(ValidationFailed) as exc:
        services.customer_change_lifecycle(actor=agent, customer_id=customer.pk, status="customer")
    assert "reason" in exc.value.errors


def test_merge_keeps_contacts_and_history_and_records_who(records_officer, agent):
    target = make_customer(actor=agent, name="张三", phone="13812341234", tags=["慢病"])
    duplicate = make_customer(
        actor=agent, name="张三", phone="13900001111", tags=["母婴"], birthday=dt.date(1990, 1, 2)
    )
    services.customer_add_contact(
        actor=agent, customer_id=duplicate.pk, kind="email", value="zs@example.com"
    )
    # when
    merged = services.customer_merge(
        actor=records_officer, target_id=target.pk, duplicate_id=duplicate.pk, reason="同一人"
    )
    # then
    duplicate.refresh_from_db()
    assert duplicate.merged_into == merged
    assert sorted(merged.contacts.values_list("value", flat=True)) == [
        "+8613812341234",
        "+8613900001111",
        "zs@example.com",
    ]
    assert merged.contacts.filter(kind="phone", is_primary=True).get().value == "+8613812341234"
    assert set(merged.tags.values_list("name", flat=True)) == {"慢病", "母婴"}
    assert merged.birthday == dt.date(1990, 1, 2)
    kinds = list(merged.events.values_list("kind", flat=True))
    assert kinds.count("created") == 2  # the duplicate's history moved over
    event = merged.events.get(kind="merged")
    assert event.actor == records_officer
    assert event.data["duplicate_number"] == duplicate.number
    assert AuditEntry.objects.filter(action="customer.merged", actor=records_officer).exists()
    assert not Customer.objects.live().filter(pk=duplicate.pk).exists()
    # the duplicate's phone now finds the surviving customer
    assert Customer.objects.filter(search_text__contains=" 1111").get() == merged


def test_merge_refusals(records_officer, agent, customer):
    other = make_customer(actor=agent, name="李四")
    with pytest.raises(Forbidden):
        services.customer_merge(actor=agent, target_id=customer.pk, duplicate_id=other.pk)
    with pytest.raises(CustomerMergeNotAllowed):
        services.customer_merge(
            actor=records_officer, target_id=customer.pk, duplicate_id=customer.pk
        )
    services.customer_merge(actor=records_officer, target_id=customer.pk, duplicate_id=other.pk)
    with pytest.raises(CustomerMergeNotAllowed):
        services.customer_merge(actor=records_officer, target_id=customer.pk, duplicate_id=other.pk)


def test_reveal_requires_permission_and_is_audited(agent, records_officer, customer):
    phone = customer.contacts.get(kind="phone")
    assert phone.masked == "138****1234"
    with pytest.raises(Forbidden):
        services.customer_reveal_contact(actor=agent, customer_id=customer.pk, contact_id=phone.pk)
    assert not AuditEntry.objects.filter(action="customer.contact_revealed").exists()
    value = services.customer_reveal_contact(
        actor=records_officer, customer_id=customer.pk, contact_id=phone.pk, ip="127.0.0.1"
    )
    assert value == "13812341234"
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert (entry.actor, entry.ip, entry.changes["contact"]) == (
        records_officer,
        "127.0.0.1",
        "138****1234",
    )


def test_reveal_for_a_call_is_audited_with_its_purpose(agent, customer):
    """The app that owns the call has checked it is the agent's; the reveal says what it was
    for, and reads so on the change log."""
    from kefu.core.exceptions import Conflict
    from kefu.customers.display import audit_changes

    phone = services.customer_phone_reveal_for_call(
        actor=agent, customer_id=customer.pk, call_for={"type": "followup", "id": 12}, ip="10.1.2.3"
    )
    assert phone.value == "+8613812341234"
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert (entry.actor, entry.ip) == (agent, "10.1.2.3")
    assert entry.changes == {
        "contact": "138****1234",
        "kind": "phone",
        "call_for": {"type": "followup", "id": 12},
    }
    from django.utils import translation

    with translation.override("en"):
        lines = {c.label: c.after for c in audit_changes(entry)}
    assert lines["For the call"] == "Callback for follow-up #12"
    with translation.override("zh-hans"):
        assert {c.label: c.after for c in audit_changes(entry)}["通话用途"] == "回访 #12 的回电"
    no_phone = make_customer(name="无电话", phone=None)
    with pytest.raises(Conflict):
        services.customer_phone_reveal_for_call(
            actor=agent, customer_id=no_phone.pk, call_for={"type": "ticket", "id": 1}
        )


def test_contact_add_and_remove_keep_one_primary(agent, customer):
    second = services.customer_add_contact(
        actor=agent, customer_id=customer.pk, kind="phone", value="13900002222", is_primary=True
    )
    assert list(customer.contacts.filter(kind="phone", is_primary=True)) == [second]
    services.customer_remove_contact(actor=agent, customer_id=customer.pk, contact_id=second.pk)
    assert customer.contacts.get(kind="phone").is_primary
    other = make_customer(actor=agent, name="李四")
    with pytest.raises(ContactTaken):
        services.customer_add_contact(
            actor=agent, customer_id=other.pk, kind="phone", value="13812341234"
        )


def test_store_manager_sees_and_creates_only_in_own_store(store_manager, store, other_store, agent):
    mine = make_customer(actor=agent, name="本店", store=store)
    theirs = make_customer(actor=agent, name="别店", store=other_store)
    from kefu.customers.selectors import customer_get_for_user, customer_list_visible_to

    assert list(customer_list_visible_to(user=store_manager)) == [mine]
    with pytest.raises(CustomerNotFound):
        customer_get_for_user(user=store_manager, customer_id=theirs.pk)
    created = services.customer_create(actor=store_manager, data={"name": "新客"})
    assert created.store == store
    with pytest.raises(ValidationFailed):
        services.customer_create(actor=store_manager, data={"name": "新客2", "store": other_store})


def test_department_handler_cannot_read_the_archive(handler, customer):
    from kefu.customers.selectors import customer_list_visible_to

    with pytest.raises(Forbidden):
        customer_list_visible_to(user=handler)


def test_phone_normalization_examples():
    from kefu.customers.contacts import contact_mask, phone_normalize

    assert phone_normalize("13812345678") == "+8613812345678"
    assert phone_normalize("+86 138-1234-5678") == "+8613812345678"
    assert phone_normalize("010-12345678") == "+861012345678"
    assert contact_mask("phone", "+8613812345678") == "138****5678"
    assert ContactPoint(kind="email", value="zhang@qq.com").masked == "z***@qq.com"
