"""The demo department's store visits (预约到店): what a pharmacy's customers come to the store
for, four weeks of visits already recorded by the stores and bookings for the coming days.

Visits fit the customer: a chronic-disease check for customers tagged 慢病/高血压/糖尿病, the
birthday gift for members, baby care for mothers. Chats that ended in an appointment
(OUTCOME.APPOINTMENT in demo.conversations) and hotline calls noted as one are booked from that
consultation, so the funnel reads consultation → appointment → visit → order.

Everything goes through kefu.appointments.services with an explicit `now` (the booking moment,
then the visit); the rows' own timestamps are then set to those moments, as the other demo steps
do, so the funnel of the last 30 days counts them on their days.
"""

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from kefu.accounts.models import Store, User
from kefu.accounts.roles import Role
from kefu.appointments.models import Appointment
from kefu.appointments.services import (
    appointment_book,
    appointment_cancel,
    appointment_record_visit,
    slot_starts,
    slots_free,
)
from kefu.conversations.models import CallRecord, Conversation
from kefu.core.exceptions import DomainError
from kefu.customers.models import Customer, CustomerEvent
from kefu.notifications.models import Notification

PAST_DAYS = 28
AHEAD_DAYS = 3
CHRONIC = frozenset({"慢病", "高血压", "糖尿病"})


@dataclass(frozen=True)
class VisitKind:
    """Why a customer comes to the store, for whom, and how such visits usually end."""

    purpose: str
    tags: frozenset[str]  # the customer has one of these tags (empty: anyone)
    weight: float
    arrive: float  # share of bookings the customer keeps
    buy: float  # share of visits ending in a purchase
    amount: tuple[int, int]  # yuan
    notes: tuple[str, ...]
    reserved: bool = False  # the purchase is an order placed beforehand (order number)
    members_only: bool = False


PHARMACIST = VisitKind(
    "药师一对一用药指导",
    frozenset(),
    3,
    0.8,
    0.45,
    (20, 160),
    ("药师核对了在服药品，讲解服药时间", "已讲解用法用量和相互作用，顾客购买了推荐药品"),
)
VISIT_KINDS = [
    VisitKind(
        "慢病复查：免费测血压、血糖",
        CHRONIC,
        4,
        0.85,
        0.7,
        (60, 320),
        ("血压 138/86，已续购降压药一个月量", "空腹血糖 6.8，药师提醒按时服药并控制饮食"),
    ),
    PHARMACIST,
    VisitKind(
        "到店取预订的处方药",
        frozenset(),
        2,
        0.92,
        0.97,
        (40, 280),
        ("核对处方后取药", "已取药，药师交代了用法"),
        reserved=True,
    ),
    VisitKind(
        "会员日领取生日礼包",
        frozenset(),
        2,
        0.8,
        0.5,
        (30, 200),
        ("已领取生日礼包", "领取礼包并参加会员日满减"),
        members_only=True,
    ),
    VisitKind(
        "中医坐诊·体质辨识",
        frozenset({"中药调理", "睡眠"}),
        1.5,
        0.75,
        0.6,
        (80, 420),
        ("坐诊医师辨识为气虚体质，开具调理方", "已按方抓药七剂"),
    ),
    VisitKind(
        "血压计、血糖仪试用与校准",
        frozenset({"中老年", "高血压", "糖尿病"}),
        1,
        0.8,
        0.55,
        (129, 499),
        ("已校准顾客自带血压计", "试用后购买电子血压计一台"),
    ),
    VisitKind(
        "母婴用品选购与宝宝用药指导",
        frozenset({"母婴"}),
        1,
        0.8,
        0.5,
        (50, 300),
        ("已讲解宝宝退烧药剂量", "推荐无乳糖配方奶粉，顾客购买两罐"),
    ),
]
CANCEL_REASONS = ["顾客来电改期", "顾客临时有事", "已在线上下单，无需到店"]


class _Loader:
    def __init__(self, *, seed: int, now: dt.datetime):
        self.rng = random.Random(seed)
        self.now = now
        self.stores = list(Store.objects.filter(is_active=True).order_by("code"))
        self.managers = {
            u.store_id: u
            for u in User.objects.filter(role=Role.STORE_MANAGER, is_active=True).order_by("pk")
        }
        self.agents = list(
            User.objects.filter(role=Role.AGENT, is_active=True).order_by("username")
        )
        pool = (
            Customer.objects.live()
            .filter(store__in=self.stores)
            .prefetch_related("tags")
            .order_by("pk")[:600]
        )
        self.customers = [(c, {t.name for t in c.tags.all()}) for c in pool]
        self.orders = 0
        self.counts = {"appointments": 0, "visits": 0, "orders": 0}

    # --- choosing --------------------------------------------------------------------------

    def kinds_for(self, customer: Customer, tags: set[str]) -> list[VisitKind]:
        return [
            k
            for k in VISIT_KINDS
            if (not k.tags or k.tags & tags) and (not k.members_only or customer.status == "member")
        ]

    def kind_for(self, customer: Customer, tags: set[str]) -> VisitKind:
        kinds = self.kinds_for(customer, tags)
        return self.rng.choices(kinds, weights=[k.weight for k in kinds])[0]

    def slot(self, store: Store, day: dt.date, *, after: dt.datetime) -> dt.datetime | None:
        starts = [s for s in slot_starts(store, day) if s > after]
        return self.rng.choice(starts) if starts else None

    # --- writing ---------------------------------------------------------------------------

    def _stamp(self, appointment: Appointment, *, booked_at: dt.datetime) -> None:
        """The rows the services wrote carry the booking moment, not the load's."""
        Appointment.objects.filter(pk=appointment.pk).update(
            created_at=booked_at, updated_at=booked_at
        )
        CustomerEvent.objects.filter(
            customer=appointment.customer_id,
            kind=CustomerEvent.Kind.APPOINTMENT_BOOKED,
            created_at__gt=booked_at,
            data__appointment=appointment.pk,
        ).update(created_at=booked_at)

    def book(
        self,
        *,
        customer: Customer,
        store: Store,
        starts_at: dt.datetime,
        booked_at: dt.datetime,
        kind: VisitKind,
        agent: User,
        source: str = Appointment.Source.PROFILE,
        conversation: Conversation | None = None,
    ) -> Appointment | None:
        last_notice = Notification.objects.order_by("-pk").values_list("pk", flat=True).first()
        try:
            appointment = appointment_book(
                actor=agent,
                data={
                    "customer": customer.pk,
                    "store": store.pk,
                    "starts_at": starts_at,
                    "purpose": kind.purpose,
                    "source": source,
                    "conversation": conversation.pk if conversation else None,
                },
                now=booked_at,
            )
        except DomainError:  # the slot filled up, or the customer is booked there already
            return None
        self._stamp(appointment, booked_at=booked_at)
        # The store manager's notice of the booking, read within the hour.
        Notification.objects.filter(pk__gt=last_notice or 0).update(
            created_at=booked_at, read_at=min(booked_at + dt.timedelta(hours=1), self.now)
        )
        self.counts["appointments"] += 1
        if appointment.starts_at < self.now:
            self.outcome(appointment, kind)
        return appointment

    def outcome(self, appointment: Appointment, kind: VisitKind) -> None:
        """What the store recorded once the slot had passed."""
        rng = self.rng
        starts_at = appointment.starts_at
        roll = rng.random()
        if roll >= kind.arrive and rng.random() < 0.35:  # called off beforehand
            appointment_cancel(
                actor=appointment.booked_by,
                appointment_id=appointment.pk,
                reason=rng.choice(CANCEL_REASONS),
            )
            Appointment.objects.filter(pk=appointment.pk).update(
                updated_at=starts_at - dt.timedelta(hours=rng.randint(2, 20))
            )
            return
        recorded_at = min(starts_at + dt.timedelta(minutes=rng.randint(10, 55)), self.now)
        arrived = roll < kind.arrive
        amount, order_no = None, ""
        if arrived and rng.random() < kind.buy:
            amount = Decimal(rng.randint(*kind.amount)) + Decimal(rng.choice([0, 50, 80])) / 100
            if kind.reserved:
                self.orders += 1
                order_no = f"YD{timezone.localdate(starts_at):%y%m%d}{self.orders:04d}"
        appointment_record_visit(
            actor=self.managers.get(appointment.store_id),
            appointment_id=appointment.pk,
            arrived=arrived,
            note=rng.choice(kind.notes) if arrived else "",
            purchase_amount=amount,
            order_no=order_no,
            now=recorded_at,
        )
        Appointment.objects.filter(pk=appointment.pk).update(updated_at=recorded_at)
        CustomerEvent.objects.filter(
            customer=appointment.customer_id,
            kind__in=[
                CustomerEvent.Kind.APPOINTMENT_VISITED,
                CustomerEvent.Kind.APPOINTMENT_MISSED,
            ],
            data__appointment=appointment.pk,
        ).update(created_at=recorded_at)
        if arrived:
            self.counts["visits"] += 1
            self.counts["orders"] += bool(amount or order_no)

    # --- the story -------------------------------------------------------------------------

    def from_consultations(self) -> None:
        """Chats that ended in an appointment and calls noted as one: booked from them."""
        since = self.now - dt.timedelta(days=PAST_DAYS)
        chats = (
            Conversation.objects.filter(
                outcome=Conversation.Outcome.APPOINTMENT,
                created_at__gte=since,
                customer__store__in=self.stores,
            )
            .select_related("customer__store", "assignee")
            .order_by("created_at", "pk")
        )
        for chat in chats:
            agent = chat.assignee if chat.assignee and chat.assignee.role == Role.AGENT else None
            booked_at = (chat.closed_at or chat.created_at) + dt.timedelta(minutes=2)
            self._book_after(
                chat.customer,
                booked_at,
                agent=agent,
                kind=PHARMACIST,
                source=Appointment.Source.CONVERSATION,
                conversation=chat,
            )
        calls = (
            CallRecord.objects.filter(
                notes__contains="预约", started_at__gte=since, customer__store__in=self.stores
            )
            .select_related("customer__store", "agent")
            .order_by("started_at", "pk")
        )
        for call in calls:
            booked_at = (call.ended_at or call.started_at) + dt.timedelta(minutes=1)
            self._book_after(
                call.customer,
                booked_at,
                agent=call.agent,
                kind=PHARMACIST,
                source=Appointment.Source.PHONE,
            )

    def _book_after(self, customer, booked_at, *, agent, kind, source, conversation=None) -> None:
        """Into the first free slot one to four days after the consultation."""
        store = customer.store
        day = timezone.localdate(booked_at) + dt.timedelta(days=self.rng.randint(1, 4))
        starts_at = self.slot(store, day, after=booked_at)
        if starts_at is None:
            return
        self.book(
            customer=customer,
            store=store,
            starts_at=starts_at,
            booked_at=booked_at,
            kind=kind,
            agent=agent or self.rng.choice(self.agents),
            source=source,
            conversation=conversation,
        )

    def past_weeks(self) -> None:
        """Four weeks of bookings from customer profiles, one to three per store and day."""
        today = timezone.localdate(self.now)
        by_store: dict[int, list[tuple[Customer, set[str]]]] = {}
        for customer, tags in self.customers:
            by_store.setdefault(customer.store_id, []).append((customer, tags))
        for back in range(PAST_DAYS, 0, -1):
            day = today - dt.timedelta(days=back)
            for store in self.stores:
                people = by_store.get(store.pk)
                if not people:
                    continue
                for _ in range(self.rng.choice([0, 1, 1, 2, 2, 3])):
                    customer, tags = self.rng.choice(people)
                    booked_at = timezone.make_aware(
                        dt.datetime.combine(
                            day - dt.timedelta(days=self.rng.randint(1, 5)),
                            dt.time(self.rng.randint(9, 19), self.rng.choice([0, 15, 30, 45])),
                        )
                    )
                    starts_at = self.slot(store, day, after=booked_at)
                    if starts_at is None:
                        continue
                    self.book(
                        customer=customer,
                        store=store,
                        starts_at=starts_at,
                        booked_at=booked_at,
                        kind=self.kind_for(customer, tags),
                        agent=self.rng.choice(self.agents),
                    )

    def coming_days(self) -> None:
        """Bookings made today for the next days, not yet visited."""
        today = timezone.localdate(self.now)
        people = list(self.customers)
        for offset in range(1, AHEAD_DAYS + 1):
            day = today + dt.timedelta(days=offset)
            for store in self.stores:
                candidates = [p for p in people if p[0].store_id == store.pk]
                for starts, places in slots_free(store, day, now=self.now)[2:5]:
                    if not places or not candidates:
                        continue
                    customer, tags = candidates.pop(self.rng.randrange(len(candidates)))
                    people.remove((customer, tags))
                    self.book(
                        customer=customer,
                        store=store,
                        starts_at=starts,
                        booked_at=self.now,
                        kind=self.kind_for(customer, tags),
                        agent=self.agents[0],
                    )


def visits_load(*, seed: int, now: dt.datetime | None = None) -> dict[str, int]:
    """Store visits of the last four weeks (booked, then kept, missed or called off, with what
    they led to) and bookings for the coming days. Needs the stores' opening hours, the staff
    and the customers; returns how many appointments, visits and orders were made."""
    now = now or timezone.now()
    loader = _Loader(seed=seed, now=now)
    if not loader.stores or not loader.agents or not loader.customers:
        return loader.counts
    loader.from_consultations()
    loader.past_weeks()
    loader.coming_days()
    return loader.counts
