"""Customer endpoints under /api/v1/customers: reads through selectors, writes through services."""

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from kefu.core.bounds import DateIn, Id, PageNumber
from kefu.core.exceptions import ValidationFailed
from kefu.core.schemas import InputSchema
from kefu.customers import services
from kefu.customers.filtersets import CustomerFilterSet
from kefu.customers.models import Customer
from kefu.customers.selectors import (
    customer_get_for_user,
    customer_get_profile,
    customer_list_for_display,
    customer_list_visible_to,
    customer_timeline,
)

router = Router(tags=["customers"])


class StoreRef(Schema):
    id: int
    name: str


class CustomerRef(Schema):
    """A customer as other records name it: no contact, so it can be shown to anyone."""

    id: int
    number: str
    name: str


class ContactOut(Schema):
    id: int
    kind: str
    value: str = Field(description="Masked (138****1234); reveal with the reveal action.")
    label: str
    is_primary: bool


class AddressIO(InputSchema):
    label: str = ""
    province: str = ""
    city: str = ""
    district: str = ""
    detail: str = Field(min_length=1, max_length=200)
    postcode: str = ""
    is_default: bool = False


class CustomerListItem(Schema):
    id: int
    number: str
    name: str
    status: str
    level: str
    store: StoreRef | None
    tags: list[str]
    phone: str | None = Field(description="Primary phone, masked.")
    created_at: dt.datetime


class CustomerPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[CustomerListItem]


class CustomerOut(Schema):
    id: int
    number: str
    name: str
    status: str
    level: str
    gender: str
    birthday: dt.date | None
    source: str
    store: StoreRef | None
    temperament: str
    temperament_note: str
    membership_card_no: str | None
    member_since: dt.date | None
    notes: str
    custom_fields: dict[str, Any]
    tags: list[str]
    contacts: list[ContactOut]
    addresses: list[AddressIO]
    merged_into: str | None = Field(
        description="Number of the customer this record was merged into."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class ContactIn(InputSchema):
    kind: str = Field(description="phone, email, wechat_openid, wechat_unionid or qq")
    value: str = Field(min_length=1, max_length=200)
    label: str = Field("", max_length=50)
    is_primary: bool = False


class CustomerCreateIn(InputSchema):
    name: str = Field(min_length=1, max_length=100)
    level: str = Customer.Level.NORMAL
    gender: str = ""
    birthday: DateIn | None = None
    source: str = Customer.Source.OTHER
    store_id: Id | None = None
    temperament: str = ""
    temperament_note: str = Field("", max_length=500)
    membership_card_no: str | None = Field(None, max_length=40)
    member_since: DateIn | None = None
    notes: str = ""
    custom_fields: dict[str, Any] = {}
    tags: list[str] = []
    contacts: list[ContactIn] = []
    addresses: list[AddressIO] = []


class CustomerUpdateIn(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    level: str | None = None
    gender: str | None = None
    birthday: DateIn | None = None
    source: str | None = None
    store_id: Id | None = None
    temperament: str | None = None
    temperament_note: str | None = Field(None, max_length=500)
    membership_card_no: str | None = Field(None, max_length=40)
    member_since: DateIn | None = None
    notes: str | None = None
    custom_fields: dict[str, Any] | None = None
    tags: list[str] | None = None
    addresses: list[AddressIO] | None = None


class LifecycleIn(InputSchema):
    status: str = Field(description="prospect, customer, member or closed")
    reason: str = Field("", max_length=500)


class MergeIn(InputSchema):
    duplicate_id: Id = Field(description="The record folded into this one; it keeps its number.")
    reason: str = Field("", max_length=500)


class RevealOut(Schema):
    id: int
    kind: str
    value: str


class CustomerEventOut(Schema):
    id: int
    kind: str
    actor: str | None
    data: dict[str, Any]
    created_at: dt.datetime


class CustomerFilters(Schema):
    q: str | None = None
    status: str | None = None
    level: str | None = None
    source: str | None = None
    store: Id | None = None
    tag: str | None = None
    page: PageNumber = 1
    page_size: int = Field(25, ge=1, le=200)


def _store(customer: Customer) -> StoreRef | None:
    return StoreRef(id=customer.store.pk, name=customer.store.name) if customer.store else None


def _list_item(customer: Customer) -> CustomerListItem:
    phones = [c for c in customer.primary_contacts if c.kind == "phone"]
    return CustomerListItem(
        id=customer.pk,
        number=customer.number,
        name=customer.name,
        status=customer.status,
        level=customer.level,
        store=_store(customer),
        tags=[t.name for t in customer.tags.all()],
        phone=phones[0].masked if phones else None,
        created_at=customer.created_at,
    )


def _customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut(
        id=customer.pk,
        number=customer.number,
        name=customer.name,
        status=customer.status,
        level=customer.level,
        gender=customer.gender,
        birthday=customer.birthday,
        source=customer.source,
        store=_store(customer),
        temperament=customer.temperament,
        temperament_note=customer.temperament_note,
        membership_card_no=customer.membership_card_no,
        member_since=customer.member_since,
        notes=customer.notes,
        custom_fields=customer.custom_fields,
        tags=[t.name for t in customer.tags.all()],
        contacts=[
            ContactOut(id=c.pk, kind=c.kind, value=c.masked, label=c.label, is_primary=c.is_primary)
            for c in customer.contacts.all()
        ],
        addresses=[
            AddressIO(
                label=a.label,
                province=a.province,
                city=a.city,
                district=a.district,
                detail=a.detail,
                postcode=a.postcode,
                is_default=a.is_default,
            )
            for a in customer.addresses.all()
        ],
        merged_into=customer.merged_into.number if customer.merged_into_id else None,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def _profile(request: HttpRequest, customer_id: int) -> CustomerOut:
    return _customer_out(customer_get_profile(user=request.auth, customer_id=customer_id))


@router.get("", response=CustomerPage, summary="List and search customers")
def customer_list_api(request: HttpRequest, filters: Query[CustomerFilters]):
    params = filters.dict(exclude_none=True)
    page, page_size = params.pop("page"), params.pop("page_size")
    filterset = CustomerFilterSet(
        params, queryset=customer_list_visible_to(user=request.auth).live()
    )
    if not filterset.is_valid():
        raise ValidationFailed({k: list(v) for k, v in filterset.errors.items()})
    customers = filterset.qs.order_by("-id")
    count = customers.count()
    rows = customer_list_for_display(customers)[(page - 1) * page_size : page * page_size]
    return CustomerPage(
        count=count, page=page, page_size=page_size, results=[_list_item(c) for c in rows]
    )


@router.post("", response={201: CustomerOut}, summary="Create a customer")
def customer_create_api(request: HttpRequest, payload: CustomerCreateIn):
    data = payload.dict(exclude={"tags", "contacts", "addresses", "store_id"})
    data["store"] = payload.store_id
    customer = services.customer_create(
        actor=request.auth,
        data=data,
        contacts=[c.dict() for c in payload.contacts],
        addresses=[a.dict() for a in payload.addresses],
        tags=payload.tags,
    )
    return Status(201, _profile(request, customer.pk))


@router.get("/{customer_id}", response=CustomerOut, summary="One customer, contacts masked")
def customer_detail_api(request: HttpRequest, customer_id: int):
    return _profile(request, customer_id)


@router.patch("/{customer_id}", response=CustomerOut, summary="Change profile fields")
def customer_update_api(request: HttpRequest, customer_id: int, payload: CustomerUpdateIn):
    data = payload.dict(exclude_unset=True, exclude={"tags", "addresses", "store_id"})
    if "store_id" in payload.model_fields_set:
        data["store"] = payload.store_id
    services.customer_update(
        actor=request.auth,
        customer_id=customer_id,
        data=data,
        tags=payload.tags,
        addresses=[a.dict() for a in payload.addresses] if payload.addresses is not None else None,
    )
    return _profile(request, customer_id)


@router.post(
    "/{customer_id}/lifecycle", response=CustomerOut, summary="Change the lifecycle status"
)
def customer_lifecycle_api(request: HttpRequest, customer_id: int, payload: LifecycleIn):
    services.customer_change_lifecycle(
        actor=request.auth, customer_id=customer_id, status=payload.status, reason=payload.reason
    )
    return _profile(request, customer_id)


@router.post(
    "/{customer_id}/merge", response=CustomerOut, summary="Merge a duplicate into this customer"
)
def customer_merge_api(request: HttpRequest, customer_id: int, payload: MergeIn):
    services.customer_merge(
        actor=request.auth,
        target_id=customer_id,
        duplicate_id=payload.duplicate_id,
        reason=payload.reason,
    )
    return _profile(request, customer_id)


@router.post("/{customer_id}/contacts", response={201: ContactOut}, summary="Add a contact")
def customer_contact_add_api(request: HttpRequest, customer_id: int, payload: ContactIn):
    c = services.customer_add_contact(actor=request.auth, customer_id=customer_id, **payload.dict())
    return Status(
        201,
        ContactOut(id=c.pk, kind=c.kind, value=c.masked, label=c.label, is_primary=c.is_primary),
    )


@router.delete(
    "/{customer_id}/contacts/{contact_id}", response={204: None}, summary="Remove a contact"
)
def customer_contact_remove_api(request: HttpRequest, customer_id: int, contact_id: int):
    services.customer_remove_contact(
        actor=request.auth, customer_id=customer_id, contact_id=contact_id
    )
    return Status(204, None)


@router.post(
    "/{customer_id}/contacts/{contact_id}/reveal",
    response=RevealOut,
    summary="Reveal a full contact (audited)",
)
def customer_contact_reveal_api(request: HttpRequest, customer_id: int, contact_id: int):
    value = services.customer_reveal_contact(
        actor=request.auth,
        customer_id=customer_id,
        contact_id=contact_id,
        ip=request.META.get("REMOTE_ADDR"),
    )
    contact = customer_get_for_user(user=request.auth, customer_id=customer_id).contacts.get(
        pk=contact_id
    )
    return RevealOut(id=contact.pk, kind=contact.kind, value=value)


@router.get(
    "/{customer_id}/timeline", response=list[CustomerEventOut], summary="The customer's timeline"
)
def customer_timeline_api(request: HttpRequest, customer_id: int):
    customer = customer_get_profile(user=request.auth, customer_id=customer_id)
    return [
        CustomerEventOut(
            id=e.pk,
            kind=e.kind,
            actor=str(e.actor) if e.actor else None,
            data=e.data,
            created_at=e.created_at,
        )
        for e in customer_timeline(customer=customer)
    ]
