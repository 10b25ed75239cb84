"""Follow-up pages: the agent's day (overdue, due today, upcoming, each by priority then due
time), logging a call in one click, texting the customer, and the records officer's lists.
Parse → gate (selectors) → service → render; HTMX re-renders or removes one row."""

import datetime as dt
import math

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, Count, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from kefu.accounts.models import User
from kefu.core.exceptions import DomainError, ValidationFailed
from kefu.core.forms import FieldNamedErrorsMixin
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.models import ContactPoint
from kefu.followups import services
from kefu.followups.models import CareList, FollowUp
from kefu.followups.selectors import (
    SCOPE_ALL,
    SCOPE_MINE,
    care_list_followups,
    followup_get_for_user,
    followup_list_for,
    followup_list_for_team,
    followup_phone,
)

# Open follow-ups a page (the overdue and the soonest due come first), like the other lists.
PAGE_SIZE = 25
TEAM_LIMIT = 100
CARE_LIST_HISTORY = 100


class FollowUpCompleteForm(FieldNamedErrorsMixin, forms.Form):
    outcome = forms.ChoiceField(
        label=gettext_lazy("Outcome"),
        choices=[("", "—"), *FollowUp.Outcome.choices],
        required=False,
    )
    outcome_note = forms.CharField(
        label=gettext_lazy("Notes"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    next_due_at = forms.DateTimeField(
        label=gettext_lazy("Next follow-up at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=gettext_lazy("Leave empty to follow the rule (a retry when not reached)."),
    )


class FollowUpMessageForm(FieldNamedErrorsMixin, forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Message"),
        max_length=services.MESSAGE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": gettext_lazy("Write the message.")},
    )


class CareListBuildForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("List"), choices=CareList.Kind.choices)
    days = forms.IntegerField(
        label=gettext_lazy("Days ahead"), min_value=1, max_value=60, required=False, initial=7
    )


def _complete_form(followup: FollowUp, data=None) -> FollowUpCompleteForm:
    return FollowUpCompleteForm(data, auto_id=f"followup{followup.pk}_%s")


def _message_form(followup: FollowUp, data=None) -> FollowUpMessageForm:
    initial = {
        "body": _(
            "Hello %(name)s, this is customer service. We tried to call you; please call us "
            "back when convenient."
        )
        % {"name": followup.customer.name}
    }
    return FollowUpMessageForm(data, initial=initial, auto_id=f"message{followup.pk}_%s")


def _scope(request: HttpRequest, value: str | None) -> str:
    if value == SCOPE_ALL and request.user.has_perm("tickets.assign_ticket"):
        return SCOPE_ALL
    return SCOPE_MINE


def _list_url(scope: str) -> str:
    url = reverse("followups:followup_list")
    return f"{url}?scope={SCOPE_ALL}" if scope == SCOPE_ALL else url


def _phones() -> Prefetch:
    phones = ContactPoint.objects.filter(kind=ContactPoint.Kind.PHONE).order_by("-is_primary", "id")
    return Prefetch("customer__contacts", queryset=phones, to_attr="phones")


def _with_phones(followup: FollowUp) -> FollowUp:
    phone = followup_phone(followup)
    followup.customer.phones = [phone] if phone else []  # type: ignore[attr-defined]
    return followup


def _end_of_today(now: dt.datetime) -> dt.datetime:
    tomorrow = timezone.localdate(now) + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time.min, tzinfo=timezone.get_current_timezone())


def _group_of(followup: FollowUp, now: dt.datetime) -> str:
    if followup.due_at < now:
        return "overdue"
    return "today" if followup.due_at < _end_of_today(now) else "upcoming"


def _assignee_filter(request: HttpRequest, scope: str) -> int | None:
    value = request.GET.get("assignee", "")
    return int(value) if scope == SCOPE_ALL and value.isdigit() and len(value) < 12 else None


def _team_followups(user: User) -> QuerySet[FollowUp]:
    return followup_list_for_team(user=user).prefetch_related(_phones())


def _row_context(request: HttpRequest, scope: str, now: dt.datetime) -> dict:
    user = request.user
    return {
        "scope": scope,
        "now": now,
        "can_change": has_perm(user, "followups.change_followup"),
        "can_book": has_perm(user, "appointments.add_appointment"),
        "list_url": _list_url(scope),
    }


def _page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


def _day_order(followups: QuerySet[FollowUp], now: dt.datetime) -> QuerySet[FollowUp]:
    """Overdue, due today, upcoming; in each, high priority first, then the soonest due."""
    group = Case(
        When(due_at__lt=now, then=Value(0)),
        When(due_at__lt=_end_of_today(now), then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return followups.annotate(day_group=group).order_by("day_group", "priority", "due_at", "id")


def _group_counts(followups: QuerySet[FollowUp], now: dt.datetime) -> dict[str, int]:
    end = _end_of_today(now)
    return followups.order_by().aggregate(
        overdue=Count("id", filter=Q(due_at__lt=now)),
        today=Count("id", filter=Q(due_at__gte=now, due_at__lt=end)),
        upcoming=Count("id", filter=Q(due_at__gte=end)),
    )


@login_required
def followup_list(request: HttpRequest) -> HttpResponse:
    """The agent's day: overdue, due today and upcoming follow-ups, each by priority (high
    first) then due time, PAGE_SIZE at a time; supervisors switch to everyone's and filter by
    assignee."""
    scope = _scope(request, request.GET.get("scope"))
    now = timezone.now()
    followups = followup_list_for(user=request.user, scope=scope)
    assignee = _assignee_filter(request, scope)
    if assignee is not None:
        followups = followups.filter(assignee_id=assignee)
    counts = _group_counts(followups, now)
    total = sum(counts.values())
    pages = max(1, math.ceil(total / PAGE_SIZE))
    number = min(_page_number(request.GET.get("page")), pages)
    start = (number - 1) * PAGE_SIZE
    rows = list(_day_order(followups, now).prefetch_related(_phones())[start : start + PAGE_SIZE])
    buckets: dict[str, list[FollowUp]] = {"overdue": [], "today": [], "upcoming": []}
    for followup in rows:
        buckets[_group_of(followup, now)].append(followup)
    labels = {"overdue": _("Overdue"), "today": _("Due today"), "upcoming": _("Upcoming")}

    def with_forms(items: list[FollowUp]) -> list:
        return [(f, _complete_form(f), _message_form(f)) for f in items]

    groups = [(key, labels[key], with_forms(items), counts[key]) for key, items in buckets.items()]
    team = list(_team_followups(request.user)[:TEAM_LIMIT]) if scope == SCOPE_MINE else []
    assignees = []
    if scope == SCOPE_ALL:
        assignees = list(
            User.objects.filter(followups__status=FollowUp.Status.OPEN)
            .distinct()
            .order_by("display_name", "username")
        )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        **_row_context(request, scope, now),
        "groups": groups,
        "team": team,
        "assignees": assignees,
        "assignee": assignee,
        "can_see_all": request.user.has_perm("tickets.assign_ticket"),
        "can_see_lists": request.user.has_perm("followups.view_carelist"),
        "page_number": number,
        "page_count": pages,
        "total": total,
        "has_previous": number > 1,
        "has_next": number < pages,
        "query": query.urlencode(),
        "active_nav": "followups",
    }
    return render(request, "followups/followup_list.html", context)


def _put_errors(form: forms.Form, exc: DomainError) -> None:
    if isinstance(exc, ValidationFailed):
        for field, texts in exc.errors.items():
            for text in texts:
                form.add_error(field if field in form.fields else None, text)
    else:
        form.add_error(None, exc.message)


@login_required
@require_POST
def followup_complete(request: HttpRequest, pk: int) -> HttpResponse:
    """Log the call. Only the assignee, or a supervisor, may (others get not found). HTMX: the
    row goes; a line says when the next follow-up is due if one was scheduled."""
    followup = followup_get_for_user(user=request.user, followup_id=pk)
    scope = _scope(request, request.POST.get("scope"))
    now = timezone.now()
    form = _complete_form(followup, request.POST)
    if form.is_valid():
        try:
            done = services.followup_complete(
                actor=request.user,
                followup_id=followup.pk,
                outcome=form.cleaned_data["outcome"],
                outcome_note=form.cleaned_data["outcome_note"],
                now=now,
                next_due_at=form.cleaned_data["next_due_at"],
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            if not request.htmx:
                messages.error(request, exc.message)
                return redirect(_list_url(scope))
            _put_errors(form, exc)
        else:
            following = (
                FollowUp.objects.open().filter(previous=done).order_by("due_at", "id").first()
            )
            if not request.htmx:
                messages.success(
                    request,
                    _("Follow-up with %(customer)s recorded.") % {"customer": done.customer.name},
                )
                return redirect(_list_url(scope))
            context = {
                "f": done,
                "following": following,
                "following_group": _group_of(following, now) if following else "",
                "scope": scope,
            }
            response = render(request, "followups/followup_list.html#followup-done", context)
            trigger_client_event(response, "followup-completed", {"id": done.pk})
            return response
    elif not request.htmx:
        for name, errors in form.errors.items():
            label = form.fields[name].label if name in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else error)
        return redirect(_list_url(scope))
    context = {
        **_row_context(request, scope, now),
        "f": _with_phones(followup),
        "form": form,
        "msg_form": _message_form(followup),
    }
    return render(request, "followups/followup_list.html#followup-row", context)


@login_required
@require_POST
def followup_call(request: HttpRequest, pk: int) -> HttpResponse:
    """Call the customer: the full number of this follow-up's customer, as a tel: link, for its
    assignee (or a supervisor), audited as a reveal for this follow-up. HTMX: the row comes back
    with the number and its "log the call" form open; the lists keep showing it masked."""
    require_perm(request.user, "followups.change_followup")
    followup = followup_get_for_user(user=request.user, followup_id=pk)
    scope = _scope(request, request.POST.get("scope"))
    revealed, errors = None, []
    try:
        revealed = services.followup_call(
            actor=request.user, followup_id=followup.pk, ip=request.META.get("REMOTE_ADDR")
        )
    except DomainError as exc:
        if exc.is_access_error:
            raise
        errors = [exc.message]
    if not request.htmx:
        context = {
            "customer": followup.customer,
            "about": followup.get_purpose_display(),
            "revealed": revealed,
            "call_errors": errors,
            "back_url": _list_url(scope),
            "active_nav": "followups",
        }
        return render(request, "customers/contact_call.html", context)
    context = {
        **_row_context(request, scope, timezone.now()),
        "f": _with_phones(followup),
        "form": _complete_form(followup),
        "msg_form": _message_form(followup),
        "revealed": revealed,
        "call_errors": errors,
    }
    return render(request, "followups/followup_list.html#followup-row", context)


@login_required
@require_POST
def followup_message(request: HttpRequest, pk: int) -> HttpResponse:
    """Text the customer of the follow-up (SMS through the campaigns' gateway)."""
    require_perm(request.user, "followups.change_followup")
    followup = followup_get_for_user(user=request.user, followup_id=pk)
    scope = _scope(request, request.POST.get("scope"))
    form = _message_form(followup, request.POST)
    sent_to = ""
    if form.is_valid():
        try:
            services.followup_message_send(
                actor=request.user,
                followup_id=followup.pk,
                body=form.cleaned_data["body"],
                now=timezone.now(),
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            _put_errors(form, exc)
        else:
            phone = followup_phone(followup)
            sent_to = phone.masked if phone else ""
    if not request.htmx:
        if sent_to:
            messages.success(request, _("Message sent to %(phone)s.") % {"phone": sent_to})
        else:
            for error in [*form.non_field_errors(), *form.errors.get("body", [])]:
                messages.error(request, error)
        return redirect(_list_url(scope))
    context = {"f": followup, "msg_form": form, "sent_to": sent_to, "scope": scope}
    if sent_to:
        context["msg_form"] = FollowUpMessageForm(auto_id=f"message{followup.pk}_%s")
    return render(request, "followups/followup_list.html#followup-message", context)


# --- The records officer's lists ----------------------------------------------------------------

BUILD_TARGETS = {
    CareList.Kind.KEY_ACCOUNTS: gettext_lazy("handed to the VIP specialists"),
    CareList.Kind.CHURN_RISK: gettext_lazy("handed to the agents"),
    CareList.Kind.BIRTHDAYS: gettext_lazy("handed to the agents"),
}


def _build_forms(bound: CareListBuildForm | None = None) -> list:
    rows = []
    for kind, label in CareList.Kind.choices:
        form = bound if bound is not None and bound.data.get("kind") == kind else None
        form = form or CareListBuildForm(initial={"kind": kind}, auto_id=f"build_{kind}_%s")
        rows.append((kind, label, BUILD_TARGETS[kind], form))
    return rows


def _care_lists_context(request: HttpRequest, bound: CareListBuildForm | None = None) -> dict:
    stray = []  # errors of a form no build button shows (an unknown kind)
    if bound is not None and bound.data.get("kind") not in CareList.Kind.values:
        stray = [
            f"{bound.fields[name].label}: {error}" if name in bound.fields else error
            for name, errors in bound.errors.items()
            for error in errors
        ]
    return {
        "build_errors": stray,
        "lists": list(CareList.objects.select_related("built_by")[:CARE_LIST_HISTORY]),
        "build_forms": _build_forms(bound),
        "can_build": has_perm(request.user, "followups.add_carelist"),
        "active_nav": "followups",
    }


@login_required
def care_list_index(request: HttpRequest) -> HttpResponse:
    """The lists built so far and a button to build each one now."""
    require_perm(request.user, "followups.view_carelist")
    return render(request, "followups/carelist_list.html", _care_lists_context(request))


@login_required
@require_POST
def care_list_build(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "followups.add_carelist")
    kind = request.POST.get("kind", "")
    form = CareListBuildForm(request.POST, auto_id=f"build_{kind}_%s")
    if form.is_valid():
        try:
            care_list = services.care_list_build(
                actor=request.user,
                kind=form.cleaned_data["kind"],
                now=timezone.now(),
                days=form.cleaned_data["days"] or 7,
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            _put_errors(form, exc)
        else:
            messages.success(
                request,
                _("%(list)s built: %(customers)s customers, %(created)s follow-ups created.")
                % {
                    "list": care_list.get_kind_display(),
                    "customers": care_list.customers,
                    "created": care_list.handed_over,
                },
            )
            url = reverse("followups:care_list_index")
            if request.htmx:
                return HttpResponseClientRedirect(url)
            return redirect(url)
    if request.htmx and kind in CareList.Kind.values:
        context = {
            "kind": kind,
            "label": CareList.Kind(kind).label,
            "target": BUILD_TARGETS[kind],
            "form": form,
        }
        return render(request, "followups/carelist_list.html#build-form", context)
    return render(request, "followups/carelist_list.html", _care_lists_context(request, form))


@login_required
def care_list_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The follow-ups a list handed over, open first, PAGE_SIZE at a time."""
    care_list, followups = care_list_followups(user=request.user, care_list_id=pk)
    page = Paginator(followups, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"care_list": care_list, "page": page, "active_nav": "followups"}
    return render(request, "followups/carelist_detail.html", context)


@login_required
@require_POST
def followup_take(request: HttpRequest, pk: int) -> HttpResponse:
    """Take one of the team's unassigned follow-ups."""
    try:
        followup = services.followup_take(actor=request.user, followup_id=pk)
    except DomainError as exc:
        if exc.is_access_error:
            raise
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Follow-up with %(customer)s is yours.") % {"customer": followup.customer.name},
        )
    if request.htmx:
        return HttpResponseClientRedirect(reverse("followups:followup_list"))
    return redirect("followups:followup_list")
