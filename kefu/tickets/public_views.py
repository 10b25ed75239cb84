"""The customer's ticket status page, opened from a signed link (status_links) without logging in.

The customer sees their ticket in plain words and its public timeline, adds information or a
file while it is open, and accepts or objects to the resolution. Only what the customer may see
is rendered: no internal notes, no staff names beyond their display name, no other customer data.
Every response carries `Referrer-Policy: same-origin` and `Cache-Control: no-store`, since the
token in the URL is the customer's key: it never leaves for another site in a Referer header.
(`no-referrer` would also blank the Origin of the page's own form posts, which Django's CSRF
check then refuses; the browser test caught that.)
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from kefu.core.attachments import attachment_extensions
from kefu.core.csp import csp_images_from_self
from kefu.core.exceptions import DomainError, ValidationFailed
from kefu.core.forms import FieldNamedErrorsMixin
from kefu.tickets import services
from kefu.tickets.exceptions import TicketNotFound
from kefu.tickets.models import Ticket, TicketEvent
from kefu.tickets.selectors import ticket_timeline
from kefu.tickets.status_links import status_token_read

TEMPLATE = "tickets/public/ticket_status.html"
NOT_FOUND_TEMPLATE = "tickets/public/ticket_not_found.html"
# The service limits the message; the browser is told too.
MESSAGE_MAX_LENGTH = 5000
NOTE_MAX_LENGTH = 2000

S = Ticket.Status
K = TicketEvent.Kind

# The status as the customer reads it: a short label and a sentence saying what happens next.
STATUS_LABELS = {
    S.NEW: gettext_lazy("Received"),
    S.ASSIGNED: gettext_lazy("Received"),
    S.IN_PROGRESS: gettext_lazy("Being handled"),
    S.WAITING_DEPARTMENT: gettext_lazy("Being handled"),
    S.WAITING_CUSTOMER: gettext_lazy("Waiting for your information"),
    S.RESOLVED: gettext_lazy("Resolved"),
    S.CLOSED: gettext_lazy("Completed"),
}
STATUS_HINTS = {
    S.NEW: gettext_lazy("We have received your request and will contact you soon."),
    S.ASSIGNED: gettext_lazy("A member of our customer service is taking care of your request."),
    S.IN_PROGRESS: gettext_lazy("We are working on your request."),
    S.WAITING_DEPARTMENT: gettext_lazy(
        "We are checking your request with the department concerned."
    ),
    S.WAITING_CUSTOMER: gettext_lazy(
        "We need some information from you to go on: please add it below."
    ),
    S.RESOLVED: gettext_lazy("Your request is resolved. Please tell us whether you accept it."),
    S.CLOSED: gettext_lazy("Your request is completed. Thank you for your patience."),
}


class CustomerMessageForm(FieldNamedErrorsMixin, forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Add information"),
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MESSAGE_MAX_LENGTH}),
        required=False,  # the service says what is missing
    )


class CustomerFileForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Photo or file"),
        widget=forms.ClearableFileInput(
            attrs={"accept": ",".join(["image/*", *attachment_extensions()])}
        ),
        error_messages={"required": gettext_lazy("Choose a photo or file.")},
    )


class AcceptanceForm(forms.Form):
    ACCEPT, REJECT = "accept", "reject"

    decision = forms.ChoiceField(choices=[(ACCEPT, ACCEPT), (REJECT, REJECT)])
    note = forms.CharField(
        label=gettext_lazy("What are you not satisfied with?"),
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": NOTE_MAX_LENGTH}),
        max_length=NOTE_MAX_LENGTH,
        required=False,  # needed to object: the service says so
    )


def _private(response: HttpResponse) -> HttpResponse:
    """The token in the URL must not leak through the Referer header or a shared cache."""
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    csp_images_from_self(response)  # the page shows nothing from elsewhere
    return response


def _submit(form: forms.Form, call: Callable[[dict[str, Any]], object]) -> tuple[bool, str]:
    """Run the service when the form's shape is right; field errors go on the form, other
    refusals come back as a message for the page."""
    if not form.is_valid():
        return False, ""
    try:
        call(form.cleaned_data)
    except ValidationFailed as exc:
        for field, msgs in exc.errors.items():
            for message in msgs:
                form.add_error(field if field in form.fields else None, message)
        return False, ""
    except DomainError as exc:
        return False, str(exc.message)
    return True, ""


@ensure_csrf_cookie
@require_http_methods(["GET", "HEAD", "POST"])
def ticket_status(request: HttpRequest, token: str) -> HttpResponse:
    try:
        ticket = status_token_read(token)
    except TicketNotFound:
        return _private(render(request, NOT_FOUND_TEMPLATE, status=404))
    message_form = CustomerMessageForm()
    file_form = CustomerFileForm()
    acceptance_form = AcceptanceForm()
    problem = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        done = False
        if action == "message":
            message_form = CustomerMessageForm(request.POST)
            done, problem = _submit(
                message_form,
                lambda d: services.ticket_customer_message(ticket_id=ticket.pk, body=d["body"]),
            )
            success = _("Thank you. Your message has been passed on to us.")
        elif action == "file":
            file_form = CustomerFileForm(request.POST, request.FILES)
            done, problem = _submit(
                file_form,
                lambda d: services.ticket_attach(
                    actor=None, ticket_id=ticket.pk, upload=d["file"], from_customer=True
                ),
            )
            success = _("Thank you. We have received your file.")
        elif action == "acceptance":
            acceptance_form = AcceptanceForm(request.POST)
            done, problem = _submit(
                acceptance_form,
                lambda d: services.ticket_record_acceptance(
                    actor=None,
                    ticket_id=ticket.pk,
                    accepted=d["decision"] == AcceptanceForm.ACCEPT,
                    note=d["note"],
                    via="status_page",
                ),
            )
            accepted = acceptance_form.cleaned_data.get("decision") == AcceptanceForm.ACCEPT
            success = (
                _("Thank you for confirming the resolution.")
                if accepted
                else _("We are sorry. Your request is reopened and we will contact you again.")
            )
        else:
            problem = _("Your request could not be understood. Please try again.")
        if done:
            messages.success(request, success)
            return _private(redirect(request.path))
        ticket.refresh_from_db()
    context = {
        "ticket": ticket,
        "status_label": STATUS_LABELS.get(ticket.status, ticket.get_status_display()),
        "status_hint": STATUS_HINTS.get(ticket.status, ""),
        "timeline": _public_timeline(ticket),
        "can_add": ticket.is_open,
        "can_answer": ticket.status == S.RESOLVED and not ticket.acceptance,
        "message_form": message_form,
        "file_form": file_form,
        "acceptance_form": acceptance_form,
        "problem": problem,
        "max_mb": settings.ATTACHMENT_MAX_BYTES // (1024 * 1024),
    }
    return _private(render(request, TEMPLATE, context))


# --- The public timeline, in the customer's words --------------------------------------------


def _staff_name(event: TicketEvent) -> str:
    """Staff appear by their display name only, else as “Customer service”."""
    actor = event.actor
    return (actor.display_name if actor is not None else "") or _("Customer service")


def _public_timeline(ticket: Ticket) -> list[dict[str, Any]]:
    entries = []
    for event in ticket_timeline(ticket=ticket, public_only=True):
        entry = _entry(event)
        if entry is not None:
            entries.append({"at": event.created_at, "kind": event.kind, **entry})
    entries.reverse()  # newest first on a phone
    return entries


def _entry(event: TicketEvent) -> dict[str, Any] | None:
    """Title, who and text of one public event; None for what says nothing new to the customer.
    Only the listed fields of `data` are shown (a resolution's cost and root cause stay inside)."""
    data = event.data or {}
    kind = event.kind
    you = _("You")
    if kind == K.CREATED:
        return {"title": _("Your request was registered"), "who": "", "text": ""}
    if kind == K.STATUS_CHANGED:
        before, after = data.get("from", ""), data.get("to", "")
        if (
            after not in STATUS_LABELS
            or STATUS_LABELS.get(before) == STATUS_LABELS[after]
            # resolving, closing and reopening have events of their own
            or before in Ticket.DONE_STATUSES
            or after in Ticket.DONE_STATUSES
        ):
            return None
        # What we wait for is worth saying; other reasons repeat the events around them.
        reason = data.get("reason", "") if after == S.WAITING_CUSTOMER else ""
        return {
            "title": _("Status: %(status)s") % {"status": STATUS_LABELS[after]},
            "who": "",
            "text": reason,
        }
    if kind == K.REPLIED:
        return {
            "title": _("Message from customer service"),
            "who": _staff_name(event),
            "text": data.get("body", ""),
        }
    if kind == K.CUSTOMER_MESSAGE:
        return {"title": _("You added information"), "who": you, "text": data.get("body", "")}
    if kind == K.ATTACHMENT_ADDED:
        return {
            "title": _("File received: %(name)s") % {"name": data.get("name", "")},
            "who": you,
            "text": "",
        }
    if kind == K.RESOLVED:
        label = Ticket.ResolutionType(data["resolution_type"]).label if _known(data) else ""
        return {
            "title": _("Resolved: %(how)s") % {"how": label} if label else _("Resolved"),
            "who": _staff_name(event),
            "text": data.get("summary", ""),
        }
    if kind == K.ACCEPTANCE:
        title = (
            _("You accepted the resolution")
            if data.get("accepted")
            else _("You were not satisfied with the resolution")
        )
        return {"title": title, "who": "", "text": data.get("note", "")}
    if kind == K.REOPENED:
        return {"title": _("Reopened: we are working on it again"), "who": "", "text": ""}
    if kind == K.CLOSED:
        return {"title": _("Completed"), "who": "", "text": ""}
    if kind == K.CALLBACK_PROMISED:
        due = _parse(data.get("due_at"))
        return {
            "title": _("We will call you back"),
            "who": _staff_name(event),
            "due_at": due,
            "text": "",
        }
    # A kind made public later: its name only, never its data.
    return {"title": str(event.get_kind_display()), "who": "", "text": ""}


def _known(data: dict[str, Any]) -> bool:
    return data.get("resolution_type") in Ticket.ResolutionType.values


def _parse(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None
