"""Follow-up pages: the calls an agent owes (overdue, today, upcoming) and recording how each
went. Parse → gate (selectors) → service → render; HTMX re-renders one row."""

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from kefu.core.exceptions import DomainError, ValidationFailed
from kefu.followups import services
from kefu.followups.models import FollowUp
from kefu.followups.selectors import (
    SCOPE_ALL,
    SCOPE_MINE,
    followup_get_for_user,
    followup_list_for,
)

# Open follow-ups shown at most (the overdue and the soonest due come first).
LIST_LIMIT = 500


class FollowUpCompleteForm(forms.Form):
    outcome = forms.ChoiceField(
        label=gettext_lazy("Outcome"),
        choices=[("", "—"), *FollowUp.Outcome.choices],
        required=False,
    )
    outcome_note = forms.CharField(label=gettext_lazy("Notes"), max_length=2000, required=False)


def _form(followup: FollowUp, data=None) -> FollowUpCompleteForm:
    return FollowUpCompleteForm(data, auto_id=f"followup{followup.pk}_%s")


def _scope(request: HttpRequest, value: str | None) -> str:
    if value == SCOPE_ALL and request.user.has_perm("tickets.assign_ticket"):
        return SCOPE_ALL
    return SCOPE_MINE


def _list_url(scope: str) -> str:
    url = reverse("followups:followup_list")
    return f"{url}?scope={SCOPE_ALL}" if scope == SCOPE_ALL else url


@login_required
def followup_list(request: HttpRequest) -> HttpResponse:
    scope = _scope(request, request.GET.get("scope"))
    now = timezone.now()
    followups = list(followup_list_for(user=request.user, scope=scope)[:LIST_LIMIT])
    tomorrow = timezone.localdate(now) + dt.timedelta(days=1)
    end_of_today = timezone.make_aware(dt.datetime.combine(tomorrow, dt.time.min))
    groups = [
        ("overdue", _("Overdue"), [f for f in followups if f.due_at < now]),
        ("today", _("Due today"), [f for f in followups if now <= f.due_at < end_of_today]),
        ("upcoming", _("Upcoming"), [f for f in followups if f.due_at >= end_of_today]),
    ]
    context = {
        "groups": [(key, label, [(f, _form(f)) for f in rows]) for key, label, rows in groups],
        "scope": scope,
        "can_see_all": request.user.has_perm("tickets.assign_ticket"),
        "truncated": len(followups) == LIST_LIMIT,
        "now": now,
        "active_nav": "followups",
    }
    return render(request, "followups/followup_list.html", context)


@login_required
@require_POST
def followup_complete(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the outcome. Only the assignee, or a supervisor, may (others get not found)."""
    followup = followup_get_for_user(user=request.user, followup_id=pk)
    scope = _scope(request, request.POST.get("scope"))
    form = _form(followup, request.POST)
    if form.is_valid():
        try:
            services.followup_complete(
                actor=request.user,
                followup_id=followup.pk,
                outcome=form.cleaned_data["outcome"],
                outcome_note=form.cleaned_data["outcome_note"],
                now=timezone.now(),
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            if not request.htmx:
                messages.error(request, exc.message)
                return redirect(_list_url(scope))
            if isinstance(exc, ValidationFailed):
                for field, texts in exc.errors.items():
                    for text in texts:
                        form.add_error(field if field in form.fields else None, text)
            else:
                form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("Follow-up with %(customer)s recorded.") % {"customer": followup.customer.name},
            )
            if request.htmx:
                return HttpResponseClientRedirect(_list_url(scope))
            return redirect(_list_url(scope))
    elif not request.htmx:
        messages.error(request, _("Choose an outcome."))
        return redirect(_list_url(scope))
    context = {"f": followup, "form": form, "scope": scope, "now": timezone.now()}
    return render(request, "followups/followup_list.html#followup-row", context)
