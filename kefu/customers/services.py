"""Every write to the customer archive: one transaction, a timeline event and an audit entry each."""

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.accounts.models import Store, User
from kefu.audit.services import audit_record, model_diff
from kefu.core.exceptions import Conflict, ValidationFailed
from kefu.core.models import sequence_next
from kefu.core.permissions import require_perm
from kefu.customers import contacts as contact_rules
from kefu.customers.exceptions import (
    ContactTaken,
    CustomerMergeNotAllowed,
    LifecycleChangeNotAllowed,
)
from kefu.customers.models import (
    Address,
    ContactPoint,
    Customer,
    CustomerEvent,
    CustomFieldDefinition,
    Tag,
)
from kefu.customers.search import build_search_text, name_tokens
from kefu.customers.selectors import customer_get_for_user, customer_phone_get
from kefu.customers.signals import customer_merged

NUMBER_PREFIX = "KH"
NUMBER_SEQUENCE = "customer_number"

# Fields a create or update may set directly; everything else goes through its own service.
PROFILE_FIELDS = (
    "name",
    "level",
    "gender",
    "birthday",
    "source",
    "store",
    "temperament",
    "temperament_note",
    "membership_card_no",
    "member_since",
    "notes",
    "custom_fields",
)

# Which lifecycle moves are allowed (开户 → 购销 → 会员 → 销户, and reopening a closed account).
LIFECYCLE_TRANSITIONS: dict[str, set[str]] = {
    Customer.Status.PROSPECT: {
        Customer.Status.CUSTOMER,
        Customer.Status.MEMBER,
        Customer.Status.CLOSED,
    },
    Customer.Status.CUSTOMER: {Customer.Status.MEMBER, Customer.Status.CLOSED},
    Customer.Status.MEMBER: {Customer.Status.CUSTOMER, Customer.Status.CLOSED},
    Customer.Status.CLOSED: {
        Customer.Status.PROSPECT,
        Customer.Status.CUSTOMER,
        Customer.Status.MEMBER,
    },
}


def customer_number_format(value: int) -> str:
    return f"{NUMBER_PREFIX}{value:08d}"


def customer_numbers_reserve(count: int) -> list[str]:
    """Reserve `count` new customer numbers; a number handed out is never handed out again."""
    first = sequence_next(NUMBER_SEQUENCE, count=count)
    return [customer_number_format(first + i) for i in range(count)]


# --- Validation shared by create, update and import ------------------------------------------


def profile_clean(
    data: dict[str, Any], *, today: dt.date, instance: Customer | None = None
) -> dict[str, Any]:
    """Check the domain rules of profile fields; returns cleaned values or raises ValidationFailed."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    unknown = set(data) - set(PROFILE_FIELDS) - {"status"}
    for field in sorted(unknown):
        errors.setdefault(field, []).append(_("Unknown field."))
    if "name" in data:
        name = (data["name"] or "").strip()
        if not name:
            errors["name"] = [_("Enter the customer's name.")]
        elif len(name) > 100:
            errors["name"] = [_("A name has at most 100 characters.")]
        cleaned["name"] = name
    choice_fields = {
        "level": Customer.Level,
        "gender": Customer.Gender,
        "source": Customer.Source,
        "temperament": Customer.Temperament,
        "status": Customer.Status,
    }
    for field, choices in choice_fields.items():
        if field in data:
            value = data[field] if data[field] is not None else ""
            if value not in choices.values:
                errors[field] = [
                    _("“%(value)s” is not one of: %(choices)s.")
                    % {"value": value, "choices": ", ".join(v for v in choices.values if v)}
                ]
            cleaned[field] = value
    for field in ("birthday", "member_since"):
        if field in data:
            value = data[field]
            if value is not None and not isinstance(value, dt.date):
                errors[field] = [_("Enter a date as YYYY-MM-DD.")]
            elif value is not None and value > today:
                errors[field] = [_("The date cannot be in the future.")]
            elif field == "birthday" and value is not None and value.year < 1900:
                errors[field] = [_("The date is too far in the past.")]
            cleaned[field] = value
    if "store" in data:
        store = data["store"]
        if store is not None and not isinstance(store, Store):
            # An id from the API or a form.
            store = Store.objects.filter(pk=store).first() if str(store).isdigit() else None
            if store is None:
                errors["store"] = [_("Unknown store.")]
        elif store is not None and not store.is_active:
            errors["store"] = [_("The store %(store)s is closed.") % {"store": store.name}]
        cleaned["store"] = store
    if "membership_card_no" in data:
        card = (data["membership_card_no"] or "").strip() or None
        if card:
            clash = Customer.objects.filter(membership_card_no=card)
            if instance is not None:
                clash = clash.exclude(pk=instance.pk)
            other = clash.first()
            if other is not None:
                errors["membership_card_no"] = [
                    _("Card %(card)s already belongs to customer %(number)s (%(name)s).")
                    % {"card": card, "number": other.number, "name": other.name}
                ]
        cleaned["membership_card_no"] = card
    for field in ("temperament_note", "notes"):
        if field in data:
            cleaned[field] = (data[field] or "").strip()
    if "custom_fields" in data:
        try:
            cleaned["custom_fields"] = custom_fields_clean(data["custom_fields"] or {})
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def custom_fields_clean(values: dict[str, Any]) -> dict[str, Any]:
    """Check values against the custom field definitions; dates and numbers are kept as text."""
    definitions = {d.key: d for d in CustomFieldDefinition.objects.all()}
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        field = f"custom_fields.{key}"
        if definition is None:
            errors[field] = [_("Unknown custom field.")]
            continue
        if value in (None, ""):
            continue
        text = str(value).strip()
        if definition.field_type == CustomFieldDefinition.FieldType.NUMBER:
            try:
                Decimal(text)
            except InvalidOperation:
                errors[field] = [_("Enter a number.")]
        elif definition.field_type == CustomFieldDefinition.FieldType.DATE:
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                errors[field] = [_("Enter a date as YYYY-MM-DD.")]
        elif (
            definition.field_type == CustomFieldDefinition.FieldType.CHOICE
            and text not in definition.choices
        ):
            errors[field] = [
                _("Choose one of: %(choices)s.") % {"choices": ", ".join(definition.choices)}
            ]
        cleaned[key] = text
    for key, definition in definitions.items():
        if definition.is_required and key not in cleaned:
            errors[f"custom_fields.{key}"] = [
                _("%(label)s is required.") % {"label": definition.label}
            ]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def contacts_clean(
    contacts: Sequence[dict[str, Any]], *, customer: Customer | None = None
) -> list[dict[str, Any]]:
    """Normalize contacts and refuse any that belongs to another customer (pointing to it)."""
    cleaned: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for i, contact in enumerate(contacts):
        field = contact.get("field") or f"contacts.{i}.value"
        kind = contact.get("kind", "")
        try:
            value = contact_rules.contact_normalize(kind, contact.get("value", ""))
        except contact_rules.ContactInvalid as exc:
            errors.setdefault(field, []).append(str(exc))
            continue
        if (kind, value) in seen:
            continue
        seen.add((kind, value))
        cleaned.append(
            {
                "kind": kind,
                "value": value,
                "label": (contact.get("label") or "").strip()[:50],
                "is_primary": bool(contact.get("is_primary")),
                "field": field,
            }
        )
    if errors:
        raise ValidationFailed(errors)
    if cleaned:
        query = Q()
        for c in cleaned:
            query |= Q(kind=c["kind"], value=c["value"])
        taken = ContactPoint.objects.filter(query).select_related("customer")
        if customer is not None:
            taken = taken.exclude(customer=customer)
        for existing in taken:
            field = next(
                c["field"]
                for c in cleaned
                if (c["kind"], c["value"]) == (existing.kind, existing.value)
            )
            raise ContactTaken(field=field, existing=existing.customer, display=existing.masked)
    return cleaned


def _tags_resolve(names: Iterable[str]) -> list[Tag]:
    wanted = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    if any(len(n) > 50 for n in wanted):
        raise ValidationFailed({"tags": [_("A tag has at most 50 characters.")]})
    existing = {t.name: t for t in Tag.objects.filter(name__in=wanted)}
    missing = [Tag(name=n) for n in wanted if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=wanted)}
    return [existing[n] for n in wanted]


def _address_clean(addresses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    allowed = {"label", "province", "city", "district", "detail", "postcode", "is_default"}
    cleaned, errors = [], {}
    for i, address in enumerate(addresses):
        extra = set(address) - allowed
        if extra:
            errors[f"addresses.{i}"] = [
                _("Unknown field: %(fields)s.") % {"fields": ", ".join(sorted(extra))}
            ]
            continue
        if not (address.get("detail") or "").strip():
            errors[f"addresses.{i}.detail"] = [_("Enter the street address.")]
            continue
        cleaned.append({k: (v.strip() if isinstance(v, str) else v) for k, v in address.items()})
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def customer_search_text(
    customer: Customer, contacts: Iterable[ContactPoint], tags: Iterable[Tag]
) -> str:
    tokens = customer_search_tokens(customer, contacts, [tag.name for tag in tags])
    return build_search_text([customer.number, *tokens])


def customer_search_tokens(
    customer: Customer, contacts: Iterable[ContactPoint], tag_names: Iterable[str]
) -> list[str]:
    """The search tokens of a customer other than its number (the import adds that last)."""
    tokens: list[str] = [*name_tokens(customer.name)]
    for contact in contacts:
        if contact.kind == ContactPoint.Kind.PHONE:
            tokens.extend(contact_rules.phone_search_tokens(contact.value))
        else:
            tokens.append(contact.value)
    if customer.membership_card_no:
        tokens.append(customer.membership_card_no)
    tokens.extend(tag_names)
    return tokens


def customer_reindex(customer: Customer) -> None:
    customer.search_text = customer_search_text(
        customer, customer.contacts.all(), customer.tags.all()
    )
    Customer.objects.filter(pk=customer.pk).update(search_text=customer.search_text)


def _snapshot(
    customer: Customer,
    *,
    tags: Iterable[Tag] | None = None,
    contacts: Iterable[ContactPoint] | None = None,
) -> dict[str, Any]:
    """The audited view of a customer: plain values, contacts masked."""
    data: dict[str, Any] = {}
    for field in (*PROFILE_FIELDS, "status"):
        value = getattr(customer, field)
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, Store):
            value = value.name
        data[field] = value
    if customer.pk:
        tags = customer.tags.all() if tags is None else tags
        contacts = customer.contacts.all() if contacts is None else contacts
        data["tags"] = sorted(t.name for t in tags)
        data["contacts"] = sorted(c.masked for c in contacts)
    return data


def _contact_rows(customer: Customer, contacts: list[dict[str, Any]]) -> list[ContactPoint]:
    has_primary = {c["kind"] for c in contacts if c["is_primary"]}
    rows = []
    for c in contacts:
        is_primary = c["is_primary"] or c["kind"] not in has_primary
        has_primary.add(c["kind"])
        rows.append(
            ContactPoint(
                customer=customer,
                kind=c["kind"],
                value=c["value"],
                label=c["label"],
                is_primary=is_primary,
                last4=contact_rules.phone_national(c["value"])[-4:]
                if c["kind"] == ContactPoint.Kind.PHONE
                else "",
            )
        )
    return rows


# --- Services ------------------------------------------------------------------------------


@transaction.atomic
def customer_create(
    *,
    actor: User | None,
    data: dict[str, Any],
    contacts: Sequence[dict[str, Any]] = (),
    addresses: Sequence[dict[str, Any]] = (),
    tags: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> Customer:
    """Open a customer record with its number, contacts, addresses and tags."""
    require_perm(actor, "customers.add_customer")
    now = now or timezone.now()
    data = {"status": Customer.Status.PROSPECT, **data}
    if "name" not in data:
        data["name"] = ""
    # Every field's errors at once: check each part, then refuse with all of them.
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    contact_data: list[dict[str, Any]] = []
    address_data: list[dict[str, Any]] = []
    try:
        cleaned = profile_clean(data, today=timezone.localdate(now))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        contact_data = contacts_clean(contacts)  # ContactTaken (409) goes straight through
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        address_data = _address_clean(addresses)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    if actor is not None and not actor.has_perm("customers.view_all_customers"):
        # Staff who see only their store create customers there.
        cleaned["store"] = cleaned.get("store") or actor.store
        if cleaned["store"] != actor.store:
            raise ValidationFailed({"store": [_("You can only add customers to your own store.")]})
    if cleaned.get("status") == Customer.Status.MEMBER and not cleaned.get("member_since"):
        cleaned["member_since"] = timezone.localdate(now)
    tag_objs = _tags_resolve(tags)
    customer = Customer(**cleaned, created_by=actor)
    customer.number = customer_numbers_reserve(1)[0]
    contact_rows = _contact_rows(customer, contact_data)
    customer.search_text = customer_search_text(customer, contact_rows, tag_objs)
    customer.save()
    ContactPoint.objects.bulk_create(contact_rows)
    if address_data:
        Address.objects.bulk_create([Address(customer=customer, **a) for a in address_data])
    if tag_objs:
        Customer.tags.through.objects.bulk_create(
            [Customer.tags.through(customer=customer, tag=tag) for tag in tag_objs]
        )
    CustomerEvent.objects.create(
        customer=customer,
        kind=CustomerEvent.Kind.CREATED,
        actor=actor,
        data={"status": customer.status},
    )
    snapshot = _snapshot(customer, tags=tag_objs, contacts=contact_rows)
    audit_record(
        actor=actor, action="customer.created", target=customer, changes=model_diff({}, snapshot)
    )
    return customer


def customer_get_or_create_by_contact(
    *,
    actor: User | None,
    kind: str,
    value: str,
    name: str = "",
    source: str = Customer.Source.OTHER,
    now: dt.datetime | None = None,
) -> tuple[Customer, bool]:
    """The live customer owning a contact (a phone, a WeChat openid...), or a new prospect with it.

    An unknown caller becomes a prospect on the spot; a merged record answers with the record it
    was merged into. Returns (customer, created).
    """
    try:
        normalized = contact_rules.contact_normalize(kind, value)
    except contact_rules.ContactInvalid as exc:
        raise ValidationFailed({kind: [str(exc)]}) from None
    point = (
        ContactPoint.objects.select_related("customer__merged_into")
        .filter(kind=kind, value=normalized)
        .first()
    )
    if point is not None:
        customer = point.customer
        return (customer.merged_into or customer), False
    if not name.strip():
        tail = normalized[-4:] if kind == contact_rules.PHONE else normalized[:8]
        name = _("Caller %(tail)s") % {"tail": tail}
    customer = customer_create(
        actor=actor,
        data={"name": name.strip(), "source": source},
        contacts=[{"kind": kind, "value": normalized, "is_primary": True}],
        now=now,
    )
    return customer, True


@transaction.atomic
def customer_update(
    *,
    actor: User | None,
    customer_id: int,
    data: dict[str, Any],
    tags: Iterable[str] | None = None,
    addresses: Sequence[dict[str, Any]] | None = None,
    now: dt.datetime | None = None,
) -> Customer:
    """Change profile fields (not the lifecycle, not contacts: they have their own services)."""
    require_perm(actor, "customers.change_customer")
    now = now or timezone.now()
    customer = customer_get_for_user(user=actor, customer_id=customer_id, for_update=True)
    if customer.is_merged():
        raise CustomerMergeNotAllowed(
            _("This record was merged into %(number)s; edit that one.")
            % {"number": customer.merged_into.number}
        )
    if "status" in data:
        raise ValidationFailed({"status": [_("Change the lifecycle status with its own action.")]})
    cleaned = profile_clean(data, today=timezone.localdate(now), instance=customer)
    if (
        actor is not None
        and "store" in cleaned
        and not actor.has_perm("customers.view_all_customers")
        and cleaned["store"] != actor.store
    ):
        raise ValidationFailed({"store": [_("You can only move customers within your own store.")]})
    address_data = _address_clean(addresses) if addresses is not None else None
    before = _snapshot(customer)
    for field, value in cleaned.items():
        setattr(customer, field, value)
    customer.save()
    if tags is not None:
        customer.tags.set(_tags_resolve(tags))
    if address_data is not None:
        customer.addresses.all().delete()
        Address.objects.bulk_create([Address(customer=customer, **a) for a in address_data])
    customer_reindex(customer)
    changes = model_diff(before, _snapshot(customer))
    if address_data is not None:
        changes["addresses"] = [None, [str(Address(**a)) for a in address_data]]
    if changes:
        CustomerEvent.objects.create(
            customer=customer,
            kind=CustomerEvent.Kind.UPDATED,
            actor=actor,
            data={"fields": sorted(changes)},
        )
        audit_record(actor=actor, action="customer.updated", target=customer, changes=changes)
    return customer


# When a customer's own purchase rhythm is unknown, this is their usual interval.
DEFAULT_PURCHASE_INTERVAL_DAYS = 90


def churn_due(
    *, last_purchase_on: dt.date | None, last_contact_on: dt.date | None, interval: int | None
) -> dt.date | None:
    """The day a customer turns into a churn risk: their usual interval after the later of the
    last purchase and the last contact; None for someone who never bought."""
    if last_purchase_on is None:
        return None
    latest = max(d for d in (last_purchase_on, last_contact_on) if d is not None)
    return latest + dt.timedelta(days=interval or DEFAULT_PURCHASE_INTERVAL_DAYS)


def customer_touch(*, customer_id: int, on: dt.date, purchase: bool = False) -> None:
    """Record a contact (chat, call, follow-up reached) or a purchase on `on`, moving the day the
    customer would count as a churn risk. Runs inside the caller's transaction."""
    customer = (
        Customer.objects.filter(pk=customer_id)
        .only("last_purchase_on", "last_contact_on", "purchase_interval_days")
        .first()
    )
    if customer is None:
        return
    if purchase and (customer.last_purchase_on is None or on > customer.last_purchase_on):
        customer.last_purchase_on = on
    if customer.last_contact_on is None or on > customer.last_contact_on:
        customer.last_contact_on = on
    due = churn_due(
        last_purchase_on=customer.last_purchase_on,
        last_contact_on=customer.last_contact_on,
        interval=customer.purchase_interval_days,
    )
    Customer.objects.filter(pk=customer_id).update(
        last_purchase_on=customer.last_purchase_on,
        last_contact_on=customer.last_contact_on,
        churn_due_on=due,
    )


@transaction.atomic
def customer_change_lifecycle(
    *,
    actor: User | None,
    customer_id: int,
    status: str,
    reason: str = "",
    now: dt.datetime | None = None,
) -> Customer:
    """Move a customer along prospect → customer → member → closed, keeping the history."""
    require_perm(actor, "customers.change_customer")
    now = now or timezone.now()
    customer = customer_get_for_user(user=actor, customer_id=customer_id, for_update=True)
    if status not in Customer.Status.values:
        raise ValidationFailed(
            {"status": [_("Unknown lifecycle status “%(value)s”.") % {"value": status}]}
        )
    if customer.is_merged():
        raise LifecycleChangeNotAllowed(_("This record was merged into another customer."))
    if status == customer.status:
        raise LifecycleChangeNotAllowed(
            _("The customer is already %(status)s.") % {"status": customer.get_status_display()}
        )
    if status not in LIFECYCLE_TRANSITIONS[customer.status]:
        raise LifecycleChangeNotAllowed(
            _("A customer cannot go from %(from)s to %(to)s.")
            % {"from": customer.get_status_display(), "to": Customer.Status(status).label}
        )
    if customer.status == Customer.Status.CLOSED and not reason.strip():
        raise ValidationFailed({"reason": [_("Say why a closed account is reopened.")]})
    previous = customer.status
    customer.status = status
    if status == Customer.Status.MEMBER and customer.member_since is None:
        customer.member_since = timezone.localdate(now)
    customer.save(update_fields=["status", "member_since", "updated_at"])
    CustomerEvent.objects.create(
        customer=customer,
        kind=CustomerEvent.Kind.LIFECYCLE_CHANGED,
        actor=actor,
        data={"from": previous, "to": status, "reason": reason.strip()},
    )
    audit_record(
        actor=actor,
        action="customer.lifecycle_changed",
        target=customer,
        changes={"status": [previous, status], "reason": reason.strip()},
    )
    return customer


@transaction.atomic
def customer_add_contact(
    *,
    actor: User | None,
    customer_id: int,
    kind: str,
    value: str,
    label: str = "",
    is_primary: bool = False,
) -> ContactPoint:
    """Add a phone, e-mail or channel identity; refused if another customer has it."""
    require_perm(actor, "customers.change_customer")
    customer = customer_get_for_user(user=actor, customer_id=customer_id, for_update=True)
    cleaned = contacts_clean(
        [
            {
                "kind": kind,
                "value": value,
                "label": label,
                "is_primary": is_primary,
                "field": "value",
            }
        ],
        customer=customer,
    )
    if not cleaned:
        raise ValidationFailed({"value": [_("Enter a value.")]})
    c = cleaned[0]
    existing = customer.contacts.filter(kind=c["kind"], value=c["value"]).first()
    if existing is not None:
        return existing
    if c["is_primary"]:
        customer.contacts.filter(kind=c["kind"]).update(is_primary=False)
    elif not customer.contacts.filter(kind=c["kind"]).exists():
        c["is_primary"] = True
    (contact,) = _contact_rows(customer, [c])
    contact.save()
    customer_reindex(customer)
    CustomerEvent.objects.create(
        customer=customer,
        kind=CustomerEvent.Kind.CONTACT_ADDED,
        actor=actor,
        data={"kind": contact.kind, "masked": contact.masked},
    )
    audit_record(
        actor=actor,
        action="customer.contact_added",
        target=customer,
        changes={"contacts": [None, contact.masked]},
    )
    return contact


@transaction.atomic
def customer_remove_contact(*, actor: User | None, customer_id: int, contact_id: int) -> None:
    require_perm(actor, "customers.change_customer")
    customer = customer_get_for_user(user=actor, customer_id=customer_id, for_update=True)
    contact = customer.contacts.filter(pk=contact_id).first()
    if contact is None:
        raise ValidationFailed({"contact": [_("This contact is not on the customer.")]})
    masked = contact.masked
    contact.delete()
    if contact.is_primary:
        successor = customer.contacts.filter(kind=contact.kind).order_by("id").first()
        if successor:
            successor.is_primary = True
            successor.save(update_fields=["is_primary"])
    customer_reindex(customer)
    CustomerEvent.objects.create(
        customer=customer,
        kind=CustomerEvent.Kind.CONTACT_REMOVED,
        actor=actor,
        data={"kind": contact.kind, "masked": masked},
    )
    audit_record(
        actor=actor,
        action="customer.contact_removed",
        target=customer,
        changes={"contacts": [masked, None]},
    )


@transaction.atomic
def customer_reveal_contact(
    *, actor: User, customer_id: int, contact_id: int, ip: str | None = None
) -> str:
    """Show one full phone number or e-mail to a role allowed to see it, and audit that it was seen."""
    require_perm(actor, "customers.view_full_contact")
    customer = customer_get_for_user(user=actor, customer_id=customer_id)
    contact = customer.contacts.filter(pk=contact_id).first()
    if contact is None:
        raise ValidationFailed({"contact": [_("This contact is not on the customer.")]})
    audit_record(
        actor=actor,
        action="customer.contact_revealed",
        target=customer,
        changes={"contact": contact.masked, "kind": contact.kind},
        ip=ip,
    )
    return contact.display


@transaction.atomic
def customer_phone_reveal_for_call(
    *, actor: User, customer_id: int, call_for: dict[str, Any], ip: str | None = None
) -> ContactPoint:
    """The customer's full phone number for one call the caller must make, audited as a reveal
    bound to that purpose (`call_for`: {"type": "followup" | "ticket" | "conversation", "id",
    and a ticket's "number"}).

    The calling app has checked that the call is the caller's (the follow-up, ticket or chat is
    assigned to them, or they lead the team): that, not view_full_contact, is what lets an
    agent see this one number. Pages and lists keep showing it masked."""
    phone = customer_phone_get(customer_id=customer_id)
    if phone is None:
        raise Conflict(_("The customer has no phone number."), code="no_phone")
    audit_record(
        actor=actor,
        action="customer.contact_revealed",
        target=Customer.objects.get(pk=customer_id),
        changes={"contact": phone.masked, "kind": phone.kind, "call_for": call_for},
        ip=ip,
    )
    return phone


@transaction.atomic
def customer_merge(
    *, actor: User | None, target_id: int, duplicate_id: int, reason: str = ""
) -> Customer:
    """Fold a duplicate record into the target: contacts, addresses, tags and history move over.

    The duplicate keeps its number (numbers are never reused) and points to the target.
    """
    require_perm(actor, "customers.merge_customer")
    if target_id == duplicate_id:
        raise CustomerMergeNotAllowed(_("A customer cannot be merged into itself."))
    # Lock both rows in primary-key order so two merges cannot deadlock.
    locked = {
        c.pk: c
        for c in (
            customer_get_for_user(user=actor, customer_id=pk, for_update=True)
            for pk in sorted((target_id, duplicate_id))
        )
    }
    target, duplicate = locked[target_id], locked[duplicate_id]
    if target.is_merged() or duplicate.is_merged():
        raise CustomerMergeNotAllowed(_("One of these records was already merged."))
    before = _snapshot(target)
    moved_contacts = list(duplicate.contacts.values_list("kind", flat=True))
    # Contacts: the target keeps its primaries; moved ones become secondary where it has one.
    target_kinds = set(target.contacts.filter(is_primary=True).values_list("kind", flat=True))
    for contact in duplicate.contacts.all():
        contact.customer = target
        if contact.kind in target_kinds:
            contact.is_primary = False
        contact.save(update_fields=["customer", "is_primary"])
    duplicate.addresses.update(customer=target, is_default=False)
    target.tags.add(*duplicate.tags.all())
    duplicate.events.update(customer=target)
    # Fill what the target lacks from the duplicate; the target wins where both have a value.
    for field in (
        "gender",
        "birthday",
        "store",
        "temperament",
        "temperament_note",
        "member_since",
        "source",
    ):
        if not getattr(target, field) and getattr(duplicate, field):
            setattr(target, field, getattr(duplicate, field))
    if not target.membership_card_no and duplicate.membership_card_no:
        target.membership_card_no = duplicate.membership_card_no
        duplicate.membership_card_no = None
    if duplicate.notes:
        target.notes = "\n".join(filter(None, [target.notes, duplicate.notes]))
    target.custom_fields = {**duplicate.custom_fields, **target.custom_fields}
    level_rank = [Customer.Level.NORMAL, Customer.Level.VIP, Customer.Level.KEY_ACCOUNT]
    target.level = max(target.level, duplicate.level, key=level_rank.index)
    duplicate.merged_into = target
    duplicate.search_text = ""
    duplicate.save()
    target.save()
    customer_reindex(target)
    customer_merged.send(sender=Customer, target=target, duplicate=duplicate, actor=actor)
    data = {
        "duplicate_id": duplicate.pk,
        "duplicate_number": duplicate.number,
        "duplicate_name": duplicate.name,
        "reason": reason.strip(),
        "contacts_moved": len(moved_contacts),
    }
    CustomerEvent.objects.create(
        customer=target, kind=CustomerEvent.Kind.MERGED, actor=actor, data=data
    )
    changes = model_diff(before, _snapshot(target))
    changes["merged_from"] = duplicate.number
    audit_record(actor=actor, action="customer.merged", target=target, changes=changes)
    audit_record(
        actor=actor,
        action="customer.merged_away",
        target=duplicate,
        changes={"merged_into": target.number},
    )
    return target
