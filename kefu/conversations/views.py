"""The agent's inbox (在线咨询工作台): the lists of chats, one chat with the customer beside it,
and the small forms to answer, note, transfer, close with the consultation record and open a
ticket. parse → gate (selectors) → service → render; HTMX gets fragments of the same templates,
forms re-render with 200 and their errors. Live updates come over the agent socket (inbox.js);
the list also polls every 10 s while the socket is down."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Q
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from kefu.accounts.models import User
from kefu.conversations import selectors, services
from kefu.conversations.forms import (
    AgentStatusForm,
    CloseForm,
    CloseTicketForm,
    ConversationTicketForm,
    NoteForm,
    ReplyForm,
    TransferForm,
)
from kefu.conversations.models import AgentStatus, Conversation, Message
from kefu.core.attachments import attachment_response
from kefu.core.exceptions import DomainError, NotFound
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.models import ContactPoint
from kefu.followups.selectors import SCOPE_ALL, SCOPE_MINE, followup_list_for
from kefu.tickets.selectors import ticket_list_visible_to

VIEWS = ("mine", "waiting", "all", "closed")
MESSAGES_SHOWN = 100
WAIT_LATE_SECONDS = int(services.WAIT_ALERT_AGENT.total_seconds())
SIDE_LIMIT = 5


# --- The lists --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the inbox list and what the page shows about it."""

    conversation: Conversation
    waited: int | None  # seconds the customer has waited for an answer, None when answered
    late: bool  # waited a minute or more (000 在线咨询规范 6)
    unread: bool  # the customer wrote after the last answer
    waited_label: str


def _gate(request: HttpRequest) -> User:
    require_perm(request.user, "conversations.view_conversation")
    return request.user


def _view_of(request: HttpRequest, user: User) -> str:
    view = request.GET.get("view") or "mine"
    if view not in VIEWS:
        view = "mine"
    if view == "all" and not user.has_perm("conversations.view_all_conversations"):
        view = "mine"
    return view


def _tabs(user: User, view: str, counts: dict[str, int]) -> list[dict[str, Any]]:
    tabs = [
        ("mine", pgettext("inbox list", "Mine"), counts.get("mine")),
        ("waiting", pgettext("inbox list", "Waiting"), counts.get("waiting")),
    ]
    if user.has_perm("conversations.view_all_conversations"):
        tabs.append(("all", pgettext("inbox list", "All"), None))
    tabs.append(("closed", pgettext("inbox list", "Closed"), None))
    return [
        {"key": key, "label": label, "count": count, "active": key == view}
        for key, label, count in tabs
    ]


def _counts(user: User) -> dict[str, int]:
    """Open chats of the agent and chats nobody has yet, in one query."""
    visible = selectors.conversation_list_visible_to(user=user)
    # Only open and waiting chats count: the closed ones (nearly all of them) stay out of the scan.
    return visible.filter(
        status__in=[Conversation.Status.OPEN, Conversation.Status.QUEUED]
    ).aggregate(
        mine=Count(
            "id",
            filter=Q(assignee=user)
            & Q(status__in=[Conversation.Status.OPEN, Conversation.Status.QUEUED]),
        ),
        waiting=Count("id", filter=Q(status=Conversation.Status.QUEUED)),
    )


def _row(conversation: Conversation, now: dt.datetime) -> Row:
    waited = None
    if conversation.waiting_since is not None and not conversation.is_closed:
        waited = max(0, int((now - conversation.waiting_since).total_seconds()))
    return Row(
        conversation=conversation,
        waited=waited,
        late=waited is not None and waited >= WAIT_LATE_SECONDS,
        unread=waited is not None,
        waited_label=_waited_label(waited) if waited is not None else "",
    )


def _waited_label(seconds: int) -> str:
    """45 s, 12 min, 3 h: inbox.js counts on from the same numbers."""
    if seconds < 60:
        return _("%(n)s s") % {"n": seconds}
    if seconds < 3600:
        return _("%(n)s min") % {"n": seconds // 60}
    return _("%(n)s h") % {"n": seconds // 3600}


def _agent_status(user: User) -> AgentStatus | None:
    try:
        return user.agent_status
    except AgentStatus.DoesNotExist:
        return None


def _status_form(user: User, record: AgentStatus | None) -> AgentStatusForm:
    initial = {
        "status": record.status if record else AgentStatus.Status.OFFLINE,
        "capacity": record.capacity if record else 5,
    }
    return AgentStatusForm(initial=initial, auto_id="agent_status_%s")


def _list_context(user: User, *, view: str, current_id: int | None = None) -> dict[str, Any]:
    now = timezone.now()
    rows = [_row(c, now) for c in selectors.inbox_list(user=user, view=view)]
    record = _agent_status(user)
    return {
        "view": view,
        "rows": rows,
        "tabs": _tabs(user, view, _counts(user)),
        "current_id": current_id,
        "now": now,
        "agent_status": record,
        "status_form": _status_form(user, record),
        "can_set_status": user.has_perm("conversations.reply_conversation"),
        "active_nav": "inbox",
    }


def _strings() -> dict[str, Any]:
    """What inbox.js shows, translated here (no language strings in the script)."""
    return {
        "typing": _("The customer is typing…"),
        "customer": pgettext("message author", "Customer"),
        "automatic": _("Automatic"),
        "note": _("Internal note"),
        "attachment": _("Attachment"),
        "connecting": _("Connecting…"),
        "live": _("Live"),
        "reconnecting": _("Reconnecting…"),
        "offline": _("Not connected: the list refreshes every 10 s."),
        "changed": _("This conversation was changed elsewhere."),
        "reload": _("Reload"),
        "seconds": _("%(n)s s"),
        "minutes": _("%(n)s min"),
        "hours": _("%(n)s h"),
        "statuses": dict(Message.Status.choices),
    }


def _script_config(user: User, conversation: Conversation | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "ws_path": "/ws/agent/",
        "user": user.pk,
        # Times are shown in the department's time zone, whatever the browser's (as the page is).
        "time_zone": timezone.get_current_timezone_name(),
        "conversation": conversation.pk if conversation else None,
        "wait_late_seconds": WAIT_LATE_SECONDS,
        "strings": _strings(),
        "attachment_url": "",
        "suggest_url": "",
        "head_url": "",
    }
    if conversation is not None:
        config["attachment_url"] = reverse(
            "conversations:message_attachment", args=[conversation.pk, 999999999]
        )
        config["suggest_url"] = reverse("conversations:quick_reply_suggest", args=[conversation.pk])
        config["head_url"] = (
            reverse("conversations:conversation_detail", args=[conversation.pk]) + "?part=head"
        )
        config["customer_name"] = conversation.customer.name
    return config


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """The lists of chats (mine, waiting, all for leads, closed) and the status switch. HTMX
    polling and live refreshes get the list alone."""
    user = _gate(request)
    view = _view_of(request, user)
    current = request.GET.get("current", "")
    context = _list_context(user, view=view, current_id=int(current) if current.isdigit() else None)
    if request.htmx and not request.htmx.boosted:
        return render(request, "conversations/inbox.html#inbox-list", context)
    context["script_config"] = _script_config(user, None)
    return render(request, "conversations/inbox.html", context)


@login_required
@require_POST
def agent_status(request: HttpRequest) -> HttpResponse:
    """Go online, busy, away or offline and say how many chats at once."""
    user = _gate(request)
    form = AgentStatusForm(request.POST, auto_id="agent_status_%s")
    saved = False
    if form.is_valid():
        try:
            services.agent_status_set(
                actor=user,
                status=form.cleaned_data["status"],
                capacity=form.cleaned_data.get("capacity"),
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            form.add_service_errors(exc.errors, exc.message)
        else:
            saved = True
    if not request.htmx:
        if saved:
            messages.success(request, _("Status saved."))
        else:
            messages.error(request, _error_text(form))
        return redirect("conversations:inbox")
    record = AgentStatus.objects.filter(user=user).first()
    if saved:
        form = _status_form(user, record)
    context = {
        "status_form": form,
        "agent_status": record,
        "can_set_status": True,
        "status_saved": saved,
    }
    response = render(request, "conversations/inbox.html#status-switch", context)
    if saved:
        trigger_client_event(response, "inbox-refresh")
    return response


# --- One conversation -------------------------------------------------------------------------


def _messages(conversation: Conversation, before_id: int | None = None) -> tuple[list, bool]:
    """The latest messages (before `before_id`) and whether older ones exist."""
    found = selectors.message_list(
        conversation=conversation, before_id=before_id, limit=MESSAGES_SHOWN + 1
    )
    if len(found) > MESSAGES_SHOWN:
        return found[1:], True
    return found, False


def _can_work(user: User, conversation: Conversation) -> bool:
    if not user.has_perm("conversations.reply_conversation"):
        return False
    return conversation.assignee_id in (None, user.pk) or user.has_perm(
        "conversations.assign_conversation"
    )


def _allowed(user: User, conversation: Conversation) -> dict[str, bool]:
    """The panels the page offers; the services decide again on submit."""
    is_open = not conversation.is_closed
    works = _can_work(user, conversation)
    return {
        "reply": is_open and works,
        "note": user.has_perm("conversations.reply_conversation"),
        "transfer": is_open
        and (
            user.has_perm("conversations.assign_conversation")
            or (
                conversation.assignee_id == user.pk
                and user.has_perm("conversations.reply_conversation")
            )
        ),
        "close": is_open and works,
        "ticket": works and not conversation.ticket_id and user.has_perm("tickets.add_ticket"),
    }


def _can_call(user: User, conversation: Conversation) -> bool:
    """The call button: the conversation's agent, or a lead (the service decides again)."""
    return user.has_perm("conversations.reply_conversation") and (
        conversation.assignee_id == user.pk or user.has_perm("conversations.assign_conversation")
    )


def _customer_panel(user: User, conversation: Conversation) -> dict[str, Any]:
    """The customer beside the chat: profile summary with masked contacts, their other chats,
    calls, open tickets and follow-ups, each as far as the user may see them."""
    customer = conversation.customer
    history = list(selectors.customer_conversation_history(customer_id=customer.pk, limit=8))
    visible = set(
        selectors.conversation_list_visible_to(user=user)
        .filter(pk__in=[c.pk for c in history])
        .values_list("pk", flat=True)
    )
    contacts = list(customer.contacts.all()[:6])
    panel: dict[str, Any] = {
        "customer": customer,
        "contacts": contacts,
        "has_phone": any(c.kind == ContactPoint.Kind.PHONE for c in contacts),
        "can_view_customer": user.has_perm("customers.view_customer"),
        "can_reveal": user.has_perm("customers.view_full_contact")
        and user.has_perm("customers.view_customer"),
        "can_call": _can_call(user, conversation),
        "history": [(c, c.pk in visible) for c in history if c.pk != conversation.pk],
        "calls": None,
        "open_tickets": None,
        "followups": None,
    }
    if has_perm(user, "conversations.view_callrecord"):
        panel["calls"] = list(
            selectors.customer_call_history(customer_id=customer.pk, limit=SIDE_LIMIT)
        )
    if has_perm(user, "tickets.view_ticket"):
        panel["open_tickets"] = list(
            ticket_list_visible_to(user=user)
            .open()
            .filter(customer=customer)
            .order_by("-created_at")[:SIDE_LIMIT]
        )
    if has_perm(user, "followups.view_followup"):
        scope = SCOPE_ALL if has_perm(user, "tickets.assign_ticket") else SCOPE_MINE
        panel["followups"] = list(
            followup_list_for(user=user, scope=scope).filter(customer=customer)[:SIDE_LIMIT]
        )
    return panel


def _detail_context(
    request: HttpRequest,
    conversation: Conversation,
    forms: dict[str, Any] | None = None,
    *,
    with_page: bool = True,
) -> dict[str, Any]:
    user = request.user
    allowed = _allowed(user, conversation)
    forms = dict(forms or {})
    defaults = {
        "reply": lambda: ReplyForm(auto_id="reply_%s"),
        "note": lambda: NoteForm(auto_id="note_%s"),
        "transfer": lambda: TransferForm(auto_id="transfer_%s"),
        "close": lambda: CloseForm(auto_id="close_%s"),
        "ticket": lambda: ConversationTicketForm(
            user=user,
            auto_id="ticket_%s",
            initial={"subject": conversation.subject or conversation.topic},
        ),
    }
    for key, make in defaults.items():
        if allowed[key] and key not in forms:
            forms[key] = make()
    if allowed["close"] and "close_ticket" not in forms and allowed["ticket"]:
        forms["close_ticket"] = CloseTicketForm(user=user, prefix="ticket", auto_id="close_%s")
    context: dict[str, Any] = {
        "conversation": conversation,
        "allowed": allowed,
        "forms": forms,
        "active_nav": "inbox",
    }
    if with_page:
        view = _view_of(request, user)
        context.update(_list_context(user, view=view, current_id=conversation.pk))
        shown, has_earlier = _messages(conversation)
        context.update(
            {
                "message_items": shown,
                "has_earlier": has_earlier,
                "earliest_id": shown[0].pk if shown else None,
                "script_config": _script_config(user, conversation),
                **_customer_panel(user, conversation),
            }
        )
    return context


def _conversation(request: HttpRequest, pk: int) -> Conversation:
    user = _gate(request)
    return selectors.conversation_get_for_user(user=user, conversation_id=pk)


@login_required
@require_GET
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One chat: the messages, the forms, the customer. `before_id` (HTMX) loads older messages;
    `part=head` (HTMX) the header alone, refreshed when the chat is assigned or transferred."""
    conversation = _conversation(request, pk)
    if request.htmx and request.GET.get("part") == "head":
        return render(
            request, "conversations/conversation_head.html", {"conversation": conversation}
        )
    before = request.GET.get("before_id", "")
    if request.htmx and before.isdigit():
        shown, has_earlier = _messages(conversation, before_id=int(before))
        context = {
            "conversation": conversation,
            "message_items": shown,
            "has_earlier": has_earlier,
            "earliest_id": shown[0].pk if shown else None,
        }
        return render(request, "conversations/conversation_detail.html#earlier-messages", context)
    return render(
        request, "conversations/conversation_detail.html", _detail_context(request, conversation)
    )


def _panel_response(
    request: HttpRequest,
    conversation: Conversation,
    panel: str,
    forms: dict[str, Any],
    **extra: Any,
) -> HttpResponse:
    context = _detail_context(request, conversation, forms, with_page=False)
    context.update(extra)
    return render(request, f"conversations/conversation_detail.html#{panel}", context)


def _service_error(form, exc: DomainError) -> None:
    if exc.is_access_error:
        raise exc
    form.add_service_errors(exc.errors, exc.message)


@login_required
@require_POST
def conversation_call(request: HttpRequest, pk: int) -> HttpResponse:
    """Call the customer of the conversation: the full number as a tel: link, for its agent (or
    a lead), audited as a reveal for this conversation. HTMX: the link in the button's place."""
    conversation = _conversation(request, pk)
    revealed, errors = None, []
    try:
        revealed = services.conversation_call(
            actor=request.user,
            conversation_id=conversation.pk,
            ip=request.META.get("REMOTE_ADDR"),
        )
    except DomainError as exc:
        if exc.is_access_error:
            raise
        errors = [exc.message]
    context = {
        "customer": conversation.customer,
        "about": conversation.subject or conversation.topic or "",
        "revealed": revealed,
        "call_errors": errors,
        "back_url": reverse("conversations:conversation_detail", args=[conversation.pk]),
        "active_nav": "inbox",
    }
    template = "customers/contact_call.html" + ("#call-link" if request.htmx else "")
    return render(request, template, context)


@login_required
@require_POST
def message_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Answer the customer. HTMX gets a fresh reply box and the message (out of band); the
    socket brings it too, the page keeps one copy per id."""
    conversation = _conversation(request, pk)
    form = ReplyForm(request.POST, request.FILES, auto_id="reply_%s")
    sent = None
    if form.is_valid():
        try:
            sent = services.message_send(
                actor=request.user,
                conversation_id=conversation.pk,
                body=form.cleaned_data.get("body") or "",
                attachment=form.attachment_content(),
            )
        except DomainError as exc:
            _service_error(form, exc)
    if not request.htmx:
        if sent is None:
            messages.error(request, _error_text(form))
        return redirect("conversations:conversation_detail", pk=conversation.pk)
    if sent is not None:
        form = ReplyForm(auto_id="reply_%s")
        conversation = _conversation(request, pk)
    return _panel_response(request, conversation, "reply-panel", {"reply": form}, new_message=sent)


@login_required
@require_POST
def note_add(request: HttpRequest, pk: int) -> HttpResponse:
    """An internal note beside the chat; the customer never sees it."""
    conversation = _conversation(request, pk)
    form = NoteForm(request.POST, auto_id="note_%s")
    added = None
    if form.is_valid():
        try:
            added = services.note_add(
                actor=request.user,
                conversation_id=conversation.pk,
                body=form.cleaned_data.get("body") or "",
            )
        except DomainError as exc:
            _service_error(form, exc)
    if not request.htmx:
        if added is None:
            messages.error(request, _error_text(form))
        return redirect("conversations:conversation_detail", pk=conversation.pk)
    if added is not None:
        form = NoteForm(auto_id="note_%s")
    return _panel_response(request, conversation, "note-panel", {"note": form}, new_message=added)


def _error_text(form) -> str:
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        parts.extend(f"{label}: {e}" if label else str(e) for e in errors)
    return " ".join(parts) or _("Nothing was saved.")


def _done(request: HttpRequest, url: str, text: str) -> HttpResponse:
    messages.success(request, text)
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@login_required
@require_POST
def conversation_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    """Hand the chat to another agent or back to a queue, with a note."""
    conversation = _conversation(request, pk)
    user = request.user
    form = TransferForm(request.POST, auto_id="transfer_%s")
    if form.is_valid():
        queue = form.cleaned_data.get("queue")
        try:
            services.conversation_transfer(
                actor=user,
                conversation_id=conversation.pk,
                agent_id=form.cleaned_data.get("agent"),
                queue_id=queue.pk if queue else None,
                note=form.cleaned_data.get("note") or "",
            )
        except DomainError as exc:
            _service_error(form, exc)
        else:
            still_visible = selectors.conversation_list_visible_to(user=user).filter(pk=pk).exists()
            url = (
                conversation.get_absolute_url() if still_visible else reverse("conversations:inbox")
            )
            return _done(request, url, _("Conversation transferred."))
    if not request.htmx:
        messages.error(request, _error_text(form))
        return redirect("conversations:conversation_detail", pk=pk)
    return _panel_response(request, conversation, "transfer-panel", {"transfer": form})


def _close_with_ticket(
    user: User, conversation: Conversation, form: CloseForm, ticket_form: CloseTicketForm
) -> Any:
    """Open the complaint ticket and close the chat in one transaction; each service reports
    its own fields, so both forms show every error at once."""
    data = form.cleaned_data
    ticket = None
    refused = False
    with transaction.atomic():
        if ticket_form.is_valid():
            ticket_data = ticket_form.ticket_data()
            ticket_data.setdefault("subject", (data.get("topic") or "").strip())
            try:
                ticket = services.conversation_open_ticket(
                    actor=user, conversation_id=conversation.pk, data=ticket_data
                )
            except DomainError as exc:
                _service_error(ticket_form, exc)
                refused = True
        else:
            refused = True
        try:
            services.conversation_close(
                actor=user,
                conversation_id=conversation.pk,
                topic=data.get("topic") or "",
                outcome=data.get("outcome") or "",
                note=data.get("note") or "",
            )
        except DomainError as exc:
            _service_error(form, exc)
            refused = True
        if refused:
            transaction.set_rollback(True)
            return None
    return ticket


@login_required
@require_POST
def conversation_close(request: HttpRequest, pk: int) -> HttpResponse:
    """End the chat with its consultation record (客户咨询即时记录表). The outcome "complaint
    ticket" opens the ticket too and goes to it."""
    conversation = _conversation(request, pk)
    user = request.user
    form = CloseForm(request.POST, auto_id="close_%s")
    ticket_form = CloseTicketForm(request.POST, user=user, prefix="ticket", auto_id="close_%s")
    with_ticket = form.wants_ticket() and not conversation.ticket_id
    if form.is_valid():
        if with_ticket:
            ticket = _close_with_ticket(user, conversation, form, ticket_form)
            if ticket is not None:
                return _done(
                    request,
                    ticket.get_absolute_url(),
                    _("Conversation closed; ticket %(number)s opened.") % {"number": ticket.number},
                )
        else:
            try:
                services.conversation_close(
                    actor=user,
                    conversation_id=conversation.pk,
                    topic=form.cleaned_data.get("topic") or "",
                    outcome=form.cleaned_data.get("outcome") or "",
                    note=form.cleaned_data.get("note") or "",
                )
            except DomainError as exc:
                _service_error(form, exc)
            else:
                return _done(request, conversation.get_absolute_url(), _("Conversation closed."))
    if not request.htmx:
        messages.error(request, _error_text(form) if form.errors else _error_text(ticket_form))
        return redirect("conversations:conversation_detail", pk=pk)
    forms = {"close": form}
    if with_ticket:
        forms["close_ticket"] = ticket_form  # else a fresh one: its errors do not matter
    return _panel_response(request, conversation, "close-panel", forms)


@login_required
@require_POST
def conversation_open_ticket(request: HttpRequest, pk: int) -> HttpResponse:
    """Open a ticket from the chat (its customer, channel and transcript) and go to it."""
    conversation = _conversation(request, pk)
    user = request.user
    require_perm(user, "tickets.add_ticket")
    form = ConversationTicketForm(request.POST, user=user, auto_id="ticket_%s")
    if form.is_valid():
        try:
            ticket = services.conversation_open_ticket(
                actor=user, conversation_id=conversation.pk, data=form.ticket_data()
            )
        except DomainError as exc:
            _service_error(form, exc)
        else:
            return _done(
                request,
                ticket.get_absolute_url(),
                _("Ticket %(number)s opened from the conversation.") % {"number": ticket.number},
            )
    if not request.htmx:
        messages.error(request, _error_text(form))
        return redirect("conversations:conversation_detail", pk=pk)
    return _panel_response(request, conversation, "ticket-panel", {"ticket": form})


@login_required
@require_GET
def quick_reply_suggest(request: HttpRequest, pk: int) -> HttpResponse:
    """Quick replies matching what follows "/" in the reply box, filled in for this chat."""
    conversation = _conversation(request, pk)
    user = request.user
    query = request.GET.get("q", "")
    order_no = request.GET.get("order_no", "").strip()[:64]
    replies = selectors.quick_reply_list_for(user=user, query=query)[:8]
    suggestions = [
        (
            reply,
            services.quick_reply_render(
                reply, conversation=conversation, agent=user, order_no=order_no
            ),
        )
        for reply in replies
    ]
    return render(
        request,
        "conversations/conversation_detail.html#quick-replies",
        {"conversation": conversation, "suggestions": suggestions, "query": query},
    )


@login_required
@require_GET
def message_attachment(request: HttpRequest, pk: int, message_id: int) -> FileResponse:
    """A message's file, to those who see the chat (the media folder is never served)."""
    conversation = _conversation(request, pk)
    found = conversation.messages.filter(pk=message_id).first()
    if found is None or not found.attachment:
        raise NotFound(_("Attachment not found."), code="attachment_not_found")
    name = found.attachment_name or found.attachment.name.rsplit("/", 1)[-1]
    try:
        handle = found.attachment.open("rb")
    except (FileNotFoundError, ValueError):
        raise NotFound(_("The file is missing."), code="attachment_missing") from None
    return attachment_response(handle, name=name)
