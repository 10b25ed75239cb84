"""Store appointment pages: booking a customer into a slot (from the profile, a consultation, a
ticket or a call), a store's day with the visits to record, and the funnel from consultation to
order. Parse → gate (selectors) → service → render; HTMX gets fragments of the same templates."""

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from kefu.accounts.models import Store, User
from kefu.appointments import services
from kefu.appointments.forms import (
    AppointmentBookForm,
    AppointmentCancelForm,
    AppointmentDayForm,
    AppointmentVisitForm,
    FunnelForm,
)
from kefu.appointments.models import Appointment
from kefu.appointments.selectors import (
    BookingOrigin,
    Funnel,
    appointment_funnel,
    appointment_funnel_by_store,
    appointment_get_for_user,
    appointment_list_for_day,
    appointment_list_for_display,
    appointment_list_visible_to,
    booking_origin,
    own_store_only,
    store_list_for,
)
from kefu.core.exceptions import DomainError
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.models import Customer
from kefu.customers.selectors import (
    customer_list_for_display,
    customer_list_visible_to,
    customer_search,
)

# --- Booking ------------------------------------------------------------------------------------


def _id(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 12 else None


def _origin(user: User, params: QueryDict) -> BookingOrigin:
    return booking_origin(
        user=user,
        customer_id=_id(params.get("customer")),
        conversation_id=_id(params.get("conversation")),
        ticket_id=_id(params.get("ticket")),
        source=params.get("source"),
    )


def _safe_next(request: HttpRequest, value: str | None) -> str | None:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return None


def _day_url(store: Store | int | None, day: dt.date) -> str:
    query: dict[str, str] = {}
    if store is not None:
        query["store"] = str(store.pk if isinstance(store, Store) else store)
    query["day"] = day.isoformat()
    return f"{reverse('appointments:appointment_list')}?{urlencode(query)}"


def _parse_day(value: Any, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value or ""))
    except ValueError:
        return default


def _chosen_store(params: QueryDict, stores, fallback: Store | None) -> Store | None:
    store_id = _id(params.get("store"))
    if store_id is not None:
        return stores.filter(pk=store_id).first()
    if fallback is not None and stores.filter(pk=fallback.pk).exists():
        return fallback
    return None


def _slot_context(store: Store | None, day: dt.date, now: dt.datetime) -> dict[str, Any]:
    if store is None:
        return {"slots": [], "slot_store": None, "slot_day": day, "takes_bookings": True}
    schedule = services.store_schedule(store)
    return {
        "slots": services.slots_free(store, day, now=now),
        "slot_store": store,
        "slot_day": day,
        "takes_bookings": schedule.is_open_for_booking,
    }


@login_required
def appointment_book(request: HttpRequest) -> HttpResponse:
    """Book a customer into a store. ?customer=, ?conversation= or ?ticket= says who (and where
    the booking came from); HTMX GETs refresh the free slots when the store or the day changes."""
    require_perm(request.user, "appointments.add_appointment")
    now = timezone.now()
    today = timezone.localdate(now)
    params = request.POST if request.method == "POST" else request.GET
    origin = _origin(request.user, params)
    stores = Store.objects.filter(is_active=True).order_by("code")
    store = _chosen_store(params, stores, origin.store or request.user.store)
    day = _parse_day(params.get("day"), today)
    next_url = _safe_next(request, params.get("next"))
    initial = {
        "customer": origin.customer.pk if origin.customer else None,
        "conversation": origin.conversation_id,
        "ticket": origin.ticket_id,
        "store": store,
        "day": day,
        "next": next_url or "",
    }
    if request.method == "POST":
        data = request.POST.copy()
        data["customer"] = str(origin.customer.pk) if origin.customer else ""
        data["conversation"] = str(origin.conversation_id or "")
        data["ticket"] = str(origin.ticket_id or "")
        form = AppointmentBookForm(data, stores=stores)
        if form.is_valid():
            try:
                appointment = services.appointment_book(
                    actor=request.user, data=form.service_data(source=origin.source), now=now
                )
            except DomainError as exc:
                if exc.is_access_error:
                    raise
                form.add_service_errors(exc.errors, exc.message)
            else:
                when = timezone.localtime(appointment.starts_at)
                messages.success(
                    request,
                    _("%(customer)s is booked into %(store)s at %(when)s.")
                    % {
                        "customer": appointment.customer.name,
                        "store": appointment.store.name,
                        "when": when.strftime("%Y-%m-%d %H:%M"),
                    },
                )
                target = next_url or _day_url(appointment.store, when.date())
                if request.htmx:
                    return HttpResponseClientRedirect(target)
                return redirect(target)
    else:
        form = AppointmentBookForm(initial=initial, stores=stores)
    context = {
        "form": form,
        "origin": origin,
        "customer": origin.customer,
        "chosen_slot": params.get("starts_at", ""),
        "next_url": next_url,
        "active_nav": "appointments",
        **_slot_context(store, day, now),
    }
    template = "appointments/appointment_book.html"
    if request.htmx and not request.htmx.boosted:
        template += "#slot-picker" if request.method == "GET" else "#book-form"
    return render(request, template, context)


@login_required
def appointment_customer_search(request: HttpRequest) -> HttpResponse:
    """Customers to book (the customer list's search, ten at most)."""
    require_perm(request.user, "appointments.add_appointment")
    query = request.GET.get("q", "").strip()[:100]
    matches: list[Customer] = []
    if query:
        customers = customer_search(customer_list_visible_to(user=request.user).live(), query)
        matches = list(customer_list_for_display(customers.order_by("-id"))[:10])
    next_url = _safe_next(request, request.GET.get("next"))
    context = {
        "matches": matches,
        "query": query,
        "next_query": urlencode({"next": next_url}) if next_url else "",
    }
    return render(request, "appointments/appointment_book.html#customer-matches", context)


# --- A store's day ------------------------------------------------------------------------------


def _row_context(request: HttpRequest, appointment: Appointment, **forms: Any) -> dict[str, Any]:
    user = request.user
    pk = appointment.pk
    return {
        "a": appointment,
        "visit_form": forms.get("visit_form") or AppointmentVisitForm(auto_id=f"visit{pk}_%s"),
        "cancel_form": forms.get("cancel_form") or AppointmentCancelForm(auto_id=f"cancel{pk}_%s"),
        "can_full": has_perm(user, "customers.view_full_contact"),
        "can_record": has_perm(user, "appointments.record_visit"),
        "can_cancel": has_perm(user, "appointments.change_appointment"),
    }


@login_required
def appointment_list(request: HttpRequest) -> HttpResponse:
    """A store's appointments of a day. Store managers see their own store; the others choose."""
    require_perm(request.user, "appointments.view_appointment")
    user = request.user
    today = timezone.localdate()
    stores = store_list_for(user=user)
    data = request.GET.copy()
    if own_store_only(user):
        data.pop("store", None)  # their own store, whatever is asked
    form = AppointmentDayForm(data or None, stores=stores)
    store: Store | None = None
    day = today
    if form.is_bound and form.is_valid():
        store = form.cleaned_data["store"]
        day = form.cleaned_data["day"] or today
    if own_store_only(user):
        store = user.store
    rows = list(appointment_list_for_day(user=user, day=day, store=store)) if store else []
    context = {
        "form": form,
        "store": store,
        "day": day,
        "previous_day": day - dt.timedelta(days=1),
        "next_day": day + dt.timedelta(days=1),
        "own_store_only": own_store_only(user),
        "rows": [
            (
                a,
                AppointmentVisitForm(auto_id=f"visit{a.pk}_%s"),
                AppointmentCancelForm(auto_id=f"cancel{a.pk}_%s"),
            )
            for a in rows
        ],
        "can_full": has_perm(user, "customers.view_full_contact"),
        "can_record": has_perm(user, "appointments.record_visit"),
        "can_cancel": has_perm(user, "appointments.change_appointment"),
        "active_nav": "appointments",
    }
    template = "appointments/appointment_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#day-results"
    return render(request, template, context)


def _row_response(
    request: HttpRequest, appointment_id: int, changed: bool, **forms: Any
) -> HttpResponse:
    appointment = appointment_list_for_display(
        appointment_list_visible_to(user=request.user).filter(pk=appointment_id)
    ).get()
    context = _row_context(request, appointment, **forms)
    response = render(request, "appointments/appointment_list.html#appointment-row", context)
    if changed:
        trigger_client_event(response, "appointment-changed", {"id": appointment_id})
    return response


def _after_action(request: HttpRequest, appointment: Appointment, form, done: str) -> HttpResponse:
    day = timezone.localdate(appointment.starts_at)
    if form.errors:
        if request.htmx:
            key = "visit_form" if isinstance(form, AppointmentVisitForm) else "cancel_form"
            return _row_response(request, appointment.pk, False, **{key: form})
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else error)
        return redirect(_day_url(appointment.store_id, day))
    messages.success(request, done)
    if request.htmx:
        return _row_response(request, appointment.pk, True)
    return redirect(_day_url(appointment.store_id, day))


@login_required
def appointment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An appointment is shown on its store's day."""
    appointment = appointment_get_for_user(user=request.user, appointment_id=pk)
    day = timezone.localdate(appointment.starts_at)
    return redirect(f"{_day_url(appointment.store_id, day)}#appointment-{appointment.pk}")


@login_required
@require_POST
def appointment_visit(request: HttpRequest, pk: int) -> HttpResponse:
    """The store records the visit: arrived (note, purchase, order number) or a no-show."""
    require_perm(request.user, "appointments.record_visit")
    appointment = appointment_get_for_user(user=request.user, appointment_id=pk)
    form = AppointmentVisitForm(request.POST, auto_id=f"visit{pk}_%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            appointment = services.appointment_record_visit(
                actor=request.user,
                appointment_id=appointment.pk,
                arrived=data["arrived"],
                note=data["note"],
                purchase_amount=data["purchase_amount"],
                order_no=data["order_no"],
                now=timezone.now(),
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            form.add_service_errors(exc.errors, exc.message)
    done = _("Visit of %(customer)s recorded.") % {"customer": appointment.customer.name}
    return _after_action(request, appointment, form, done)


@login_required
@require_POST
def appointment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    require_perm(request.user, "appointments.change_appointment")
    appointment = appointment_get_for_user(user=request.user, appointment_id=pk)
    form = AppointmentCancelForm(request.POST, auto_id=f"cancel{pk}_%s")
    if form.is_valid():
        try:
            appointment = services.appointment_cancel(
                actor=request.user,
                appointment_id=appointment.pk,
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            form.add_service_errors(exc.errors, exc.message)
    done = _("Appointment of %(customer)s cancelled.") % {"customer": appointment.customer.name}
    return _after_action(request, appointment, form, done)


# --- The funnel ---------------------------------------------------------------------------------


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def funnel_steps(funnel: Funnel) -> list[tuple[str, str, int, str]]:
    """(key, label, count, rate from the step before) for the page."""
    return [
        ("conversations", _("Consultations"), funnel.conversations, ""),
        (
            "appointments",
            _("Appointments"),
            funnel.appointments,
            _percent(funnel.appointment_rate),
        ),
        ("visits", _("Visits"), funnel.visits, _percent(funnel.visit_rate)),
        ("orders", _("Orders"), funnel.orders, _percent(funnel.order_rate)),
    ]


@login_required
def appointment_funnel_view(request: HttpRequest) -> HttpResponse:
    """Consultation → appointment → visit → order for a date range, in total and per store."""
    require_perm(request.user, "appointments.view_appointment")
    user = request.user
    today = timezone.localdate()
    stores = store_list_for(user=user)
    data = request.GET.copy()
    if own_store_only(user):
        data.pop("store", None)  # their own store, whatever is asked
    data.setdefault("start", (today - dt.timedelta(days=29)).isoformat())
    data.setdefault("end", today.isoformat())
    form = FunnelForm(data, stores=stores)
    funnel, per_store = None, []
    if form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        store = form.cleaned_data["store"]
        if own_store_only(user):
            store = user.store
        if store is not None or not own_store_only(user):
            funnel = appointment_funnel(start, end, store=store)
        if store is None and not own_store_only(user):
            per_store = [
                (f, _percent(f.appointment_rate), _percent(f.visit_rate), _percent(f.order_rate))
                for f in appointment_funnel_by_store(start, end, stores)
            ]
    context = {
        "form": form,
        "funnel": funnel,
        "steps": funnel_steps(funnel) if funnel else [],
        "overall": _percent(funnel.overall_rate) if funnel else "",
        "per_store": per_store,
        "own_store_only": own_store_only(user),
        "active_nav": "appointments",
    }
    template = "appointments/appointment_funnel.html"
    if request.htmx and not request.htmx.boosted:
        template += "#funnel-results"
    return render(request, template, context)
