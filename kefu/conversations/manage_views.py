"""Consultation pages off the live inbox: the hotline's call records, recording a call by hand,
and quick replies (话术). Parse → gate → service → render; HTMX gets the form fragment back."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from kefu.accounts.models import User
from kefu.conversations import services
from kefu.conversations.models import CallRecord, QuickReply
from kefu.conversations.selectors import call_list_filtered, quick_reply_list_for
from kefu.core.bounds import page_number
from kefu.core.exceptions import DomainError, Forbidden, NotFound, ValidationFailed
from kefu.core.forms import FieldNamedErrorsMixin, FilterDateField
from kefu.core.permissions import require_perm
from kefu.customers.contacts import PHONE, contact_mask
from kefu.customers.models import ContactPoint, Customer
from kefu.customers.selectors import customer_get_for_user

CALL_PAGE_SIZE = 50


# --- Reads shared with the API ------------------------------------------------------------------
def callback_url(call: CallRecord, user: User) -> str:
    """Where the callback task of a missed call is worked: its row on the follow-up list (the
    list of everyone's for those who see everyone's)."""
    url = reverse("followups:followup_list")
    if user.has_perm("tickets.assign_ticket"):
        url += "?scope=all"
    return f"{url}#followup-{call.callback_id}"


def _add_service_errors(form: forms.Form, exc: DomainError) -> None:
    if isinstance(exc, ValidationFailed):
        for field, texts in exc.errors.items():
            for text in texts:
                form.add_error(field if field in form.fields else None, text)
    else:
        form.add_error(None, exc.message)


# --- Calls ------------------------------------------------------------------------------------
class CallFilterForm(forms.Form):
    result = forms.ChoiceField(
        label=gettext_lazy("Result"),
        choices=[("", gettext_lazy("Any result")), *CallRecord.Result.choices],
        required=False,
    )
    date_from = FilterDateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = FilterDateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            self.add_error("date_to", _("The end comes after the start."))
        return data


@login_required
def call_list(request: HttpRequest) -> HttpResponse:
    """Calls newest first, filtered by result and day; each row links to its customer and, for a
    missed or dropped call, to the callback task it created."""
    require_perm(request.user, "conversations.view_callrecord")
    form = CallFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        filters = {k: v for k, v in form.cleaned_data.items() if v}
    calls = call_list_filtered(user=request.user, **filters)
    page = page_number(request.GET.get("page"))
    start = (page - 1) * CALL_PAGE_SIZE
    rows = list(calls[start : start + CALL_PAGE_SIZE + 1])
    has_next = len(rows) > CALL_PAGE_SIZE
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "calls": [
            (
                c,
                contact_mask(PHONE, c.phone),
                callback_url(c, request.user) if c.callback_id else "",
            )
            for c in rows[:CALL_PAGE_SIZE]
        ],
        "page": page,
        "has_next": has_next,
        "query": query.urlencode(),
        "active_nav": "calls",
    }
    template = "conversations/call_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#call-results"
    return render(request, template, context)


class CallRecordForm(FieldNamedErrorsMixin, forms.Form):
    """A call recorded by hand: the number (typed, or one of the chosen customer's phones), what
    happened and when."""

    customer = forms.IntegerField(required=False, widget=forms.HiddenInput)
    contact = forms.ChoiceField(label=gettext_lazy("Customer's phone"), required=False)
    phone = forms.CharField(
        label=gettext_lazy("Phone number"),
        max_length=40,
        required=False,
        help_text=gettext_lazy("The caller's number, when it is not one of the above."),
    )
    caller_name = forms.CharField(
        label=gettext_lazy("Caller's name"), max_length=100, required=False
    )
    direction = forms.ChoiceField(
        label=gettext_lazy("Direction"),
        choices=CallRecord.Direction.choices,
        initial=CallRecord.Direction.IN,
    )
    result = forms.ChoiceField(
        label=gettext_lazy("Result"), choices=[("", "—"), *CallRecord.Result.choices]
    )
    started_at = forms.DateTimeField(
        label=gettext_lazy("Started"),
        required=False,
        help_text=gettext_lazy("Leave empty for now."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    ended_at = forms.DateTimeField(
        label=gettext_lazy("Ended"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    notes = forms.CharField(
        label=gettext_lazy("Notes"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, phones: list[ContactPoint] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.phones = {str(p.pk): p for p in phones}
        if self.phones:
            self.fields["contact"].choices = [
                ("", _("Another number")),
                *((key, p.masked) for key, p in self.phones.items()),
            ]
        else:
            del self.fields["contact"]

    def clean(self):
        data = super().clean()
        contact = self.phones.get(data.get("contact") or "")
        if contact is None and not (data.get("phone") or "").strip():
            self.add_error("phone", _("Enter the caller's number."))
        data["contact_value"] = contact.value if contact is not None else ""
        return data

    def service_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "phone": data["contact_value"] or data["phone"].strip(),
            "caller_name": data["caller_name"],
            "direction": data["direction"],
            "result": data["result"],
            "started_at": data["started_at"],
            "ended_at": data["ended_at"],
            "notes": data["notes"],
        }


def _customer_for_call(user: User, value: Any) -> Customer | None:
    if not str(value or "").isdigit():
        return None
    try:
        return customer_get_for_user(user=user, customer_id=int(value))
    except DomainError:
        return None


@login_required
def call_create(request: HttpRequest) -> HttpResponse:
    """Record a call by hand (from the customer's profile with ?customer=<id>). After a missed
    or dropped call the page says which callback task was created and links it."""
    require_perm(request.user, "conversations.add_callrecord")
    source = request.POST if request.method == "POST" else request.GET
    customer = _customer_for_call(request.user, source.get("customer"))
    phones = list(customer.contacts.filter(kind=ContactPoint.Kind.PHONE)) if customer else []
    initial: dict[str, Any] = {"direction": CallRecord.Direction.IN}
    if customer is not None:
        initial.update(customer=customer.pk, caller_name=customer.name)
        if phones:
            initial["contact"] = str(phones[0].pk)
    form = CallRecordForm(
        request.POST if request.method == "POST" else None, initial=initial, phones=phones
    )
    if request.method == "POST" and form.is_valid():
        try:
            call, _created = services.call_record(
                actor=request.user, data=form.service_data(), now=timezone.now()
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            _add_service_errors(form, exc)
        else:
            params = {"recorded": call.pk}
            if customer is not None:
                params["customer"] = customer.pk
            url = f"{reverse('conversation_admin:call_create')}?{urlencode(params)}"
            if request.htmx:
                return HttpResponseClientRedirect(url)
            return redirect(url)
    recorded = None
    if request.method == "GET" and str(request.GET.get("recorded", "")).isdigit():
        recorded = (
            CallRecord.objects.select_related("customer", "callback__assignee")
            .filter(pk=int(request.GET["recorded"]), recorded_by=request.user)
            .first()
        )
    context = {
        "form": form,
        "customer": customer,
        "recorded": recorded,
        "recorded_phone": contact_mask(PHONE, recorded.phone) if recorded else "",
        "recorded_callback_url": callback_url(recorded, request.user)
        if recorded and recorded.callback_id
        else "",
        "active_nav": "calls",
    }
    template = "conversations/call_form.html" + ("#call-form" if request.htmx else "")
    return render(request, template, context)


# --- Quick replies ----------------------------------------------------------------------------
class QuickReplyForm(FieldNamedErrorsMixin, forms.Form):
    """The shape of a quick reply; the service checks the shortcut, the text and its variables."""

    shortcut = forms.CharField(
        label=gettext_lazy("Shortcut"),
        max_length=31,
        required=False,
        help_text=gettext_lazy("Typed as /shortcut in the reply box."),
    )
    title = forms.CharField(label=gettext_lazy("Title"), max_length=100, required=False)
    body = forms.CharField(
        label=pgettext_lazy("message body", "Text"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("Variables: {customer_name}, {agent_name}, {order_no}."),
    )
    team = forms.BooleanField(
        label=gettext_lazy("Team reply (everybody can use it)"), required=False
    )

    def __init__(self, *args, can_team: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_team:
            del self.fields["team"]


def _quick_reply_editable(user: User, reply_id: int) -> QuickReply:
    """The user's own reply, or a team reply for those who may change team replies."""
    reply = QuickReply.objects.filter(Q(owner=user) | Q(owner__isnull=True), pk=reply_id).first()
    if reply is None:
        raise NotFound(_("Quick reply not found."))
    if reply.owner_id is None and not user.has_perm("conversations.change_quickreply"):
        raise Forbidden()
    return reply


def _quick_reply_context(request: HttpRequest, form: QuickReplyForm) -> dict[str, Any]:
    user = request.user
    query = request.GET.get("q", "").strip()
    replies = list(quick_reply_list_for(user=user, query=query))
    return {
        "form": form,
        "q": query,
        "mine": [r for r in replies if r.owner_id == user.pk],
        "team": [r for r in replies if r.owner_id is None],
        "can_change_team": user.has_perm("conversations.change_quickreply"),
        "can_delete_team": user.has_perm("conversations.delete_quickreply"),
        "active_nav": "quick_replies",
    }


@login_required
def quickreply_list(request: HttpRequest) -> HttpResponse:
    """My quick replies and the team's, with the form to add one (POST creates)."""
    require_perm(request.user, "conversations.reply_conversation")
    can_team = request.user.has_perm("conversations.change_quickreply")
    form = QuickReplyForm(
        request.POST if request.method == "POST" else None, can_team=can_team, auto_id="new_%s"
    )
    if request.method == "POST" and form.is_valid():
        try:
            reply = services.quick_reply_save(
                actor=request.user,
                data=form.cleaned_data,
                team=bool(form.cleaned_data.get("team")),
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            _add_service_errors(form, exc)
        else:
            messages.success(
                request, _("Quick reply /%(shortcut)s saved.") % {"shortcut": reply.shortcut}
            )
            url = reverse("conversation_admin:quickreply_list")
            if request.htmx:
                return HttpResponseClientRedirect(url)
            return redirect(url)
    template = "conversations/quickreply_list.html" + ("#quickreply-form" if request.htmx else "")
    return render(request, template, _quick_reply_context(request, form))


@login_required
def quickreply_edit(request: HttpRequest, pk: int) -> HttpResponse:
    require_perm(request.user, "conversations.reply_conversation")
    reply = _quick_reply_editable(request.user, pk)
    initial = {"shortcut": reply.shortcut, "title": reply.title, "body": reply.body}
    form = QuickReplyForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.quick_reply_save(
                actor=request.user,
                data=form.cleaned_data,
                team=reply.owner_id is None,
                reply_id=reply.pk,
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            _add_service_errors(form, exc)
        else:
            messages.success(request, _("Changes saved."))
            url = reverse("conversation_admin:quickreply_list")
            if request.htmx:
                return HttpResponseClientRedirect(url)
            return redirect(url)
    template = "conversations/quickreply_form.html" + ("#quickreply-form" if request.htmx else "")
    return render(request, template, {"form": form, "reply": reply, "active_nav": "quick_replies"})


@login_required
@require_POST
def quickreply_delete(request: HttpRequest, pk: int) -> HttpResponse:
    require_perm(request.user, "conversations.reply_conversation")
    reply = QuickReply.objects.filter(Q(owner=request.user) | Q(owner__isnull=True), pk=pk).first()
    if reply is None:
        raise NotFound(_("Quick reply not found."))
    services.quick_reply_delete(actor=request.user, reply_id=reply.pk)
    messages.success(
        request, _("Quick reply /%(shortcut)s deleted.") % {"shortcut": reply.shortcut}
    )
    url = reverse("conversation_admin:quickreply_list")
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)
