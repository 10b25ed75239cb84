"""Ticket pages: parse → gate (selectors) → service → render; HTMX gets fragments of the same
templates. Every action is a small POST form on the detail page, re-rendered in place with its
errors, or followed by a reload of the ticket when it worked."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from kefu.accounts.models import User
from kefu.core.attachments import attachment_response
from kefu.core.bounds import page_number
from kefu.core.exceptions import DomainError, Forbidden, NotFound, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.core.public_address import public_address_problem, public_url
from kefu.customers.models import ContactPoint, Customer
from kefu.customers.selectors import (
    customer_get_for_user,
    customer_list_for_display,
    customer_list_visible_to,
    customer_search,
)
from kefu.tickets import display, services, sla
from kefu.tickets.filtersets import TABS, TicketFilterSet
from kefu.tickets.forms import (
    AcceptanceForm,
    ActionForm,
    AssignForm,
    AttachForm,
    CallbackForm,
    EmptyForm,
    ExternalEscalationForm,
    HandoffAnswerForm,
    HandoffCancelForm,
    HandOffForm,
    NoteForm,
    ReopenForm,
    ReplyForm,
    ResolveForm,
    TicketCreateForm,
    TicketEditForm,
    WaitCustomerForm,
)
from kefu.tickets.models import Ticket, TicketHandoff
from kefu.tickets.selectors import (
    handoff_list_for_handler,
    queue_duty_of,
    ticket_get_detail,
    ticket_get_for_user,
    ticket_list_for_display,
    ticket_list_visible_to,
    ticket_timeline,
)
from kefu.tickets.status_links import status_path_for

PAGE_SIZE = 25
DEFAULT_TAB = "open"
S = Ticket.Status


# --- List -------------------------------------------------------------------------------------


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    """Tickets the user may see, filtered. Pages by fetching one row more than shown: no count
    over a million rows."""
    now = timezone.now()
    tickets = ticket_list_visible_to(user=request.user)
    data = request.GET.copy()
    if not data.get("tab"):
        data["tab"] = DEFAULT_TAB
    filterset = TicketFilterSet(data, queryset=tickets, request=request, now=now)
    rows = filterset.qs if filterset.is_valid() else tickets.none()
    number = page_number(request.GET.get("page"))
    start = (number - 1) * PAGE_SIZE
    found = list(
        ticket_list_for_display(rows.order_by("-created_at", "-id"))[start : start + PAGE_SIZE + 1]
    )
    query = data.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "items": [(t, sla.state(t, now=now)) for t in found[:PAGE_SIZE]],
        "page_number": number,
        "has_previous": number > 1,
        "has_next": len(found) > PAGE_SIZE,
        "query": query.urlencode(),
        "tabs": [(key, label, key == data["tab"]) for key, label in TABS],
        "tab": data["tab"],
        "now": now,
        "duty": queue_duty_of(user=request.user),
        "active_nav": "tickets",
    }
    template = "tickets/ticket_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


@login_required
@require_POST
def queue_duty(request: HttpRequest) -> HttpResponse:
    """Go on or off duty in one's queues (round robin only gives tickets to agents on duty)."""
    on_duty = request.POST.get("on_duty") == "1"
    services.queue_duty_set(actor=request.user, on_duty=on_duty)
    if on_duty:
        messages.success(request, _("You are on duty: new tickets of your queues come to you."))
    else:
        messages.success(request, _("You are off duty: no new tickets are given to you."))
    return redirect("tickets:ticket_list")


# --- New ticket -------------------------------------------------------------------------------


def _customer_for_pick(user: User, customer_id: Any) -> Customer | None:
    if not str(customer_id or "").isdigit():
        return None
    try:
        return customer_get_for_user(user=user, customer_id=int(customer_id))
    except DomainError:
        return None


@login_required
def ticket_create(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "tickets.add_ticket")
    chosen = _customer_for_pick(request.user, request.GET.get("customer"))
    initial = {"customer": chosen.pk} if chosen else {}
    if chosen and chosen.store_id:
        initial["store"] = chosen.store_id
    form = TicketCreateForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST":
        chosen = _customer_for_pick(request.user, request.POST.get("customer"))
        if form.is_valid():
            try:
                ticket = services.ticket_create(
                    actor=request.user, data=form.service_data(), now=timezone.now()
                )
            except DomainError as exc:
                if exc.code == "customer_not_found":
                    form.add_error("customer", exc.message)
                elif exc.is_access_error:
                    raise
                else:
                    form.add_service_errors(exc.errors, exc.message)
            else:
                messages.success(
                    request, _("Ticket %(number)s opened.") % {"number": ticket.number}
                )
                if request.htmx:
                    return HttpResponseClientRedirect(ticket.get_absolute_url())
                return redirect(ticket)
    context = {"form": form, "chosen": chosen, "active_nav": "tickets"}
    template = "tickets/ticket_form.html" + ("#ticket-form" if request.htmx else "")
    return render(request, template, context)


@login_required
def ticket_customer_search(request: HttpRequest) -> HttpResponse:
    """Customers to pick for a new ticket (the search of the customer list, ten at most)."""
    require_perm(request.user, "tickets.add_ticket")
    query = request.GET.get("customer_q", "").strip()
    matches = []
    if query:
        customers = customer_search(customer_list_visible_to(user=request.user).live(), query)
        matches = list(customer_list_for_display(customers.order_by("-id"))[:10])
    return render(
        request, "tickets/ticket_form.html#customer-matches", {"matches": matches, "query": query}
    )


# --- Detail -----------------------------------------------------------------------------------


def _status_url(request: HttpRequest, ticket: Ticket) -> str | None:
    """The customer's status link; None when the status page is not installed or the link would
    be dead (KEFU_BASE_URL unset behind a proxy: kefu.core.public_address)."""
    try:
        path = status_path_for(ticket)
    except NoReverseMatch:
        return None
    return public_url(request, path)


def _can(ticket: Ticket, action: str) -> bool:
    return ticket.status in services.TRANSITIONS[action][0]


def _allowed_actions(user: User, ticket: Ticket, open_handoff: TicketHandoff | None) -> set[str]:
    """The panels the page offers: the workflow allows the step and the user holds the
    permission. The services decide again on submit."""
    allowed: set[str] = set()
    lead = user.has_perm("tickets.assign_ticket")
    if user.has_perm("tickets.change_ticket"):
        steps = {
            "start": "start",
            "reply": "reply",
            "wait_customer": "wait_customer",
            "resume": "resume",
            "hand_off": "hand_off",
            "reopen": "reopen",
            "edit": "update",
        }
        allowed |= {key for key, step in steps.items() if _can(ticket, step)}
        if _can(ticket, "assign") and (lead or ticket.assignee_id != user.pk):
            allowed.add("assign")
        allowed |= {"note", "attach", "escalate_external"}
        if ticket.is_open:
            allowed.add("callback")
        if _can(ticket, "resolve") and (ticket.status != S.WAITING_DEPARTMENT or lead):
            allowed.add("resolve")
        if ticket.status == S.RESOLVED:
            allowed.add("acceptance")
        if _can(ticket, "close") and (
            not ticket.is_complaint or user.has_perm("tickets.close_complaint")
        ):
            allowed.add("close")
        if open_handoff is not None:
            allowed.add("handoff_cancel")
    if open_handoff is not None and ticket.status == S.WAITING_DEPARTMENT:
        handles = user.has_perm("tickets.answer_handoff") and (
            open_handoff.department.handlers.filter(pk=user.pk).exists()
        )
        if lead or handles:
            allowed.add("handoff_answer")
        if handles:
            allowed |= {"note", "attach"}
    return allowed


def _can_call(user: User, ticket: Ticket, contacts: list[ContactPoint]) -> bool:
    """Whether the page offers the call button: the assignee, or a supervisor, of a ticket whose
    customer has a phone (the service decides again on submit)."""
    may = user.has_perm("tickets.change_ticket") and (
        ticket.assignee_id == user.pk or user.has_perm("tickets.assign_ticket")
    )
    return may and any(c.kind == ContactPoint.Kind.PHONE for c in contacts)


def _detail_context(
    request: HttpRequest, ticket: Ticket, forms: dict[str, ActionForm] | None = None
) -> dict[str, Any]:
    user = request.user
    now = timezone.now()
    handoffs = list(ticket.handoffs.all())
    open_handoff = next((h for h in handoffs if h.status == TicketHandoff.Status.OPEN), None)
    allowed = _allowed_actions(user, ticket, open_handoff)
    forms = dict(forms or {})
    for key in allowed | set(forms):
        if key not in forms:
            forms[key] = ACTIONS[key].form(user=user, ticket=ticket, auto_id=f"{key}_%s")
    customer = ticket.customer
    contacts = list(customer.contacts.all())
    can_send_status = user.has_perm("tickets.change_ticket")
    return {
        "ticket": ticket,
        "now": now,
        "sla_state": sla.state(ticket, now=now),
        "clocks": display.sla_clocks(ticket, now=now),
        "customer": customer,
        "primary_contacts": [c for c in contacts if c.is_primary],
        "can_call": _can_call(user, ticket, contacts),
        "can_view_customer": user.has_perm("customers.view_customer"),
        "handoffs": handoffs,
        "open_handoff": open_handoff,
        "status_url": _status_url(request, ticket) if can_send_status else None,
        "status_link_withheld": can_send_status and public_address_problem(request) is not None,
        "timeline": [(e, display.event_line(e)) for e in ticket_timeline(ticket=ticket)],
        "allowed": dict.fromkeys(allowed, True),
        "forms": forms,
        "active_nav": "tickets",
    }


@login_required
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = ticket_get_detail(user=request.user, ticket_id=pk)
    return render(request, "tickets/ticket_detail.html", _detail_context(request, ticket))


@login_required
@require_POST
def ticket_call(request: HttpRequest, pk: int) -> HttpResponse:
    """Call the customer about the ticket: the full number as a tel: link, for the assignee (or
    a supervisor), audited as a reveal for this ticket. HTMX: the link in the button's place."""
    ticket = ticket_get_for_user(user=request.user, ticket_id=pk)
    revealed, errors = None, []
    try:
        revealed = services.ticket_call(
            actor=request.user, ticket_id=ticket.pk, ip=request.META.get("REMOTE_ADDR")
        )
    except DomainError as exc:
        if exc.is_access_error:
            raise
        errors = [exc.message]
    context = {
        "customer": ticket.customer,
        "about": f"{ticket.number} {ticket.subject}",
        "revealed": revealed,
        "call_errors": errors,
        "back_url": ticket.get_absolute_url(),
        "active_nav": "tickets",
    }
    template = "customers/contact_call.html" + ("#call-link" if request.htmx else "")
    return render(request, template, context)


@login_required
def ticket_attachment(request: HttpRequest, pk: int, attachment_id: int) -> HttpResponse:
    """A ticket's file, to those who see the ticket (the media folder is never served)."""
    ticket = ticket_get_for_user(user=request.user, ticket_id=pk)
    attachment = ticket.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise NotFound(_("Attachment not found."), code="attachment_not_found")
    try:
        handle = attachment.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise NotFound(_("The file is missing."), code="attachment_missing") from None
    return attachment_response(handle, name=attachment.name, content_type=attachment.content_type)


# --- Actions on a ticket ----------------------------------------------------------------------

Runner = Callable[[User, Ticket, Any, dt.datetime], Any]


@dataclass(frozen=True)
class Action:
    """One action panel: its form, the service call, what to say when it worked, the partial
    that shows it and the permission checked before the service (which checks again)."""

    form: type[ActionForm]
    run: Runner
    done: Promise
    panel: str
    perms: tuple[str, ...] = ("tickets.change_ticket",)  # any one of them


def _assign(user: User, ticket: Ticket, form: AssignForm, now: dt.datetime) -> None:
    queue = form.cleaned_data.get("queue")
    services.ticket_assign(
        actor=user,
        ticket_id=ticket.pk,
        assignee_id=form.cleaned_data.get("assignee"),
        queue_id=queue.pk if queue else None,
        note=form.cleaned_data.get("note", ""),
        now=now,
    )


def _hand_off(user: User, ticket: Ticket, form: HandOffForm, now: dt.datetime) -> None:
    department = form.cleaned_data.get("department")
    services.ticket_hand_off(
        actor=user,
        ticket_id=ticket.pk,
        department_id=department.pk if department else "",
        instructions=form.cleaned_data.get("instructions", ""),
        due_at=form.cleaned_data.get("due_at"),
        now=now,
    )


def _handoff_answer(user: User, ticket: Ticket, form: HandoffAnswerForm, now: dt.datetime) -> None:
    services.handoff_answer(
        actor=user,
        ticket_id=ticket.pk,
        answer=form.cleaned_data.get("answer", ""),
        resolution=form.resolution(),
        now=now,
    )


def _escalate_external(
    user: User, ticket: Ticket, form: ExternalEscalationForm, now: dt.datetime
) -> None:
    services.ticket_escalate_external(
        actor=user,
        ticket_id=ticket.pk,
        body=form.cleaned_data.get("body", ""),
        reported_on=form.cleaned_data["reported_on"],
        reference=form.cleaned_data.get("reference", ""),
        notes=form.cleaned_data.get("notes", ""),
        now=now,
    )


def _field(name: str, form: ActionForm) -> Any:
    return form.cleaned_data.get(name) or ""


ACTIONS: dict[str, Action] = {
    "assign": Action(AssignForm, _assign, gettext_lazy("Ticket assigned."), "assign-panel"),
    "start": Action(
        EmptyForm,
        lambda u, t, f, now: services.ticket_start(actor=u, ticket_id=t.pk, now=now),
        gettext_lazy("Work started."),
        "start-panel",
    ),
    "reply": Action(
        ReplyForm,
        lambda u, t, f, now: services.ticket_reply(
            actor=u,
            ticket_id=t.pk,
            body=_field("body", f),
            channel=_field("channel", f),
            now=now,
        ),
        gettext_lazy("Reply recorded."),
        "reply-panel",
    ),
    "note": Action(
        NoteForm,
        lambda u, t, f, now: services.ticket_note(
            actor=u, ticket_id=t.pk, body=_field("body", f), now=now
        ),
        gettext_lazy("Note added."),
        "note-panel",
    ),
    "wait_customer": Action(
        WaitCustomerForm,
        lambda u, t, f, now: services.ticket_wait_customer(
            actor=u, ticket_id=t.pk, reason=_field("reason", f), now=now
        ),
        gettext_lazy("Waiting on the customer; the SLA clocks are paused."),
        "wait-customer-panel",
    ),
    "resume": Action(
        EmptyForm,
        lambda u, t, f, now: services.ticket_resume(actor=u, ticket_id=t.pk, now=now),
        gettext_lazy("Work resumed."),
        "resume-panel",
    ),
    "hand_off": Action(
        HandOffForm, _hand_off, gettext_lazy("Handed to the department."), "hand-off-panel"
    ),
    "handoff_answer": Action(
        HandoffAnswerForm,
        _handoff_answer,
        gettext_lazy("Answer recorded."),
        "handoff-answer-panel",
        # Department handlers and supervisors; the service checks the department.
        perms=("tickets.answer_handoff", "tickets.assign_ticket"),
    ),
    "handoff_cancel": Action(
        HandoffCancelForm,
        lambda u, t, f, now: services.handoff_cancel(
            actor=u, ticket_id=t.pk, reason=_field("reason", f), now=now
        ),
        gettext_lazy("Hand-off withdrawn."),
        "handoff-cancel-panel",
    ),
    "resolve": Action(
        ResolveForm,
        lambda u, t, f, now: services.ticket_resolve(
            actor=u, ticket_id=t.pk, data=f.resolution_data(), now=now
        ),
        gettext_lazy("Ticket resolved."),
        "resolve-panel",
    ),
    "acceptance": Action(
        AcceptanceForm,
        lambda u, t, f, now: services.ticket_record_acceptance(
            actor=u,
            ticket_id=t.pk,
            accepted=f.cleaned_data["accepted"],
            note=_field("note", f),
            via="phone",
            now=now,
        ),
        gettext_lazy("The customer's answer is recorded."),
        "acceptance-panel",
    ),
    "close": Action(
        EmptyForm,
        lambda u, t, f, now: services.ticket_close(actor=u, ticket_id=t.pk, now=now),
        gettext_lazy("Ticket closed."),
        "close-panel",
    ),
    "reopen": Action(
        ReopenForm,
        lambda u, t, f, now: services.ticket_reopen(
            actor=u, ticket_id=t.pk, reason=_field("reason", f), now=now
        ),
        gettext_lazy("Ticket reopened."),
        "reopen-panel",
    ),
    "callback": Action(
        CallbackForm,
        lambda u, t, f, now: services.ticket_promise_callback(
            actor=u,
            ticket_id=t.pk,
            due_at=f.cleaned_data.get("due_at") or "",
            note=_field("note", f),
            now=now,
        ),
        gettext_lazy("Callback promised; it is on the follow-up list."),
        "callback-panel",
    ),
    "attach": Action(
        AttachForm,
        lambda u, t, f, now: services.ticket_attach(
            actor=u, ticket_id=t.pk, upload=f.cleaned_data["file"], now=now
        ),
        gettext_lazy("File attached."),
        "attach-panel",
    ),
    "escalate_external": Action(
        ExternalEscalationForm,
        _escalate_external,
        gettext_lazy("External escalation recorded; managers are told."),
        "escalate-external-panel",
    ),
    "edit": Action(
        TicketEditForm,
        lambda u, t, f, now: services.ticket_update(
            actor=u, ticket_id=t.pk, data=f.ticket_data(), now=now
        ),
        gettext_lazy("Changes saved."),
        "edit-panel",
    ),
}


@login_required
@require_POST
def ticket_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Run one action panel's form. Errors re-render the panel (200, for HTMX only the panel);
    success reloads the ticket (HX-Redirect for HTMX, else a redirect)."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise Http404
    user = request.user
    if not any(user.has_perm(perm) for perm in spec.perms):
        raise Forbidden()
    ticket = ticket_get_for_user(user=user, ticket_id=pk)
    form = spec.form(request.POST, request.FILES, user=user, ticket=ticket, auto_id=f"{action}_%s")
    if form.is_valid():
        try:
            spec.run(user, ticket, form, timezone.now())
        except DomainError as exc:
            if exc.is_access_error:
                raise
            if not request.htmx and not isinstance(exc, ValidationFailed):
                messages.error(request, exc.message)
                return redirect(ticket)
            form.add_service_errors(exc.errors, exc.message)
        else:
            messages.success(request, spec.done)
            if request.htmx:
                return HttpResponseClientRedirect(ticket.get_absolute_url())
            return redirect(ticket)
    ticket = ticket_get_detail(user=user, ticket_id=pk)
    context = _detail_context(request, ticket, forms={action: form})
    template = "tickets/ticket_detail.html" + (f"#{spec.panel}" if request.htmx else "")
    return render(request, template, context)


# --- Department queue -------------------------------------------------------------------------


@login_required
def handoff_list(request: HttpRequest) -> HttpResponse:
    """Open hand-offs to the departments the user handles; the most overdue first."""
    require_perm(request.user, "tickets.answer_handoff")
    now = timezone.now()
    handoffs = list(handoff_list_for_handler(user=request.user)[:500])
    context = {
        "rows": [(h, h.due_at <= now) for h in handoffs],
        "now": now,
        "active_nav": "handoffs",
    }
    return render(request, "tickets/handoff_list.html", context)
