"""Bulk messages (群发) and member care (关怀) pages: segments with a live preview, message
templates with a test send, campaigns with live counts and their recipients, the confirmation
before sending (recipients, SMS segments, quiet hours) and a manager's approval of large ones, the
local outbox, opt-outs and the benefits members were given.

Parse → gate (permissions, the customer selectors) → service → render; HTMX gets fragments of
the same templates. The read helpers at the top are shared with the API (kefu/campaigns/api.py).
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from kefu.accounts.models import Store
from kefu.campaigns import services, sms
from kefu.campaigns.forms import (
    BenefitFilterForm,
    BenefitForm,
    CampaignForm,
    CampaignLaunchForm,
    CampaignRefuseForm,
    OptOutFilterForm,
    OptOutForm,
    OutboxFilterForm,
    RecipientFilterForm,
    SegmentForm,
    TemplateForm,
    TestSendForm,
)
from kefu.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    MemberBenefit,
    MessageTemplate,
    OptOut,
    OutboxMessage,
    Segment,
)
from kefu.campaigns.selectors import (
    address_masked,
    address_shown,
    campaign_estimate,
    campaign_sample,
    primary_phone,
    recipient_counts,
    segment_preview,
)
from kefu.core.bounds import page_number
from kefu.core.exceptions import DomainError, Forbidden, NotFound, ValidationFailed
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.models import Customer
from kefu.customers.selectors import (
    customer_get_for_user,
    customer_list_visible_to,
)

PAGE_SIZE = 25
# Campaigns in these states are being worked by the worker: their counts refresh by polling.
LIVE_STATUSES = (Campaign.Status.QUEUED, Campaign.Status.SENDING)
R = CampaignRecipient.Status


# --- Helpers of the pages -------------------------------------------------------------------------


def _paged(request: HttpRequest, rows: QuerySet, size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of rows, fetching one more than shown instead of counting them all."""
    number = page_number(request.GET.get("page"))
    start = (number - 1) * size
    found = list(rows[start : start + size + 1])
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "rows": found[:size],
        "page_number": number,
        "has_previous": number > 1,
        "has_next": len(found) > size,
        "query": query.urlencode(),
    }


def _require_any(user, *perms: str) -> None:
    if not any(has_perm(user, p) for p in perms):
        raise Forbidden()


def _render(request: HttpRequest, template: str, context: dict[str, Any], **kwargs) -> HttpResponse:
    context.setdefault("active_nav", "campaigns")
    return render(request, template, context, **kwargs)


def _fragment(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


def _done(request: HttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _count_rows(counts: dict[str, int]) -> list[tuple[str, str, int]]:
    return [(status, label, counts.get(status, 0)) for status, label in R.choices]


def _filters_summary(filters: dict[str, Any], stores: dict[int, str]) -> list[str]:
    """The filters of a segment in words, for the segment list."""
    parts = []
    if filters.get("levels"):
        labels = dict(Customer.Level.choices)
        parts.append(", ".join(str(labels.get(v, v)) for v in filters["levels"]))
    if filters.get("statuses"):
        labels = dict(Customer.Status.choices)
        parts.append(", ".join(str(labels.get(v, v)) for v in filters["statuses"]))
    if filters.get("stores"):
        parts.append(", ".join(stores.get(pk, f"#{pk}") for pk in filters["stores"]))
    if filters.get("tags"):
        parts.append(_("Tags: %(tags)s") % {"tags": ", ".join(filters["tags"])})
    if filters.get("birthday_within_days"):
        parts.append(_("Birthday within %(days)s days") % {"days": filters["birthday_within_days"]})
    if filters.get("last_purchase_within_days"):
        parts.append(
            _("Bought within %(days)s days") % {"days": filters["last_purchase_within_days"]}
        )
    if filters.get("last_purchase_before_days"):
        parts.append(
            _("No purchase for %(days)s days") % {"days": filters["last_purchase_before_days"]}
        )
    if filters.get("churn_risk"):
        parts.append(_("At churn risk"))
    return parts or [_("Every customer")]


# --- Segments -------------------------------------------------------------------------------------


@login_required
def segment_list(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "campaigns.view_segment")
    segments = list(Segment.objects.select_related("created_by").order_by("name"))
    stores = dict(Store.objects.values_list("pk", "name"))
    context = {"segments": [(s, _filters_summary(s.filters, stores)) for s in segments]}
    return _render(request, "campaigns/segment_list.html", context)


def _preview_context(form: SegmentForm) -> dict[str, Any]:
    """The preview of the form's filters, or the errors that stop it."""
    if not form.is_valid():
        return {"preview_errors": True}
    try:
        count, sample = segment_preview(form.filters(), today=timezone.localdate())
    except ValidationFailed as exc:
        form.add_service_errors(exc.errors)
        return {"preview_errors": True}
    rows = [(c, primary_phone(c)) for c in sample]
    return {"preview": {"count": count, "rows": rows, "more": count > len(rows)}}


@login_required
def segment_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """New or existing segment: the filter form, a live preview (HTMX posts the form with
    `preview`), and saving it."""
    require_perm(request.user, "campaigns.change_segment")
    segment = None
    if pk is not None:
        segment = Segment.objects.filter(pk=pk).first()
        if segment is None:
            raise NotFound(_("Segment not found."))
    context: dict[str, Any] = {"segment": segment}
    if request.method == "POST":
        form = SegmentForm(request.POST)
        if "preview" in request.POST:
            context.update(form=form, **_preview_context(form))
            template = "campaigns/segment_form.html"
            if _fragment(request):
                template += "#segment-preview"
            return _render(request, template, context)
        if form.is_valid():
            try:
                saved = services.segment_save(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    filters=form.filters(),
                    segment_id=segment.pk if segment else None,
                )
            except DomainError as exc:
                if exc.is_access_error:
                    raise
                form.add_service_errors(exc.errors, exc.message)
            else:
                messages.success(request, _("Segment “%(name)s” saved.") % {"name": saved.name})
                return _done(request, reverse("campaigns:segment_list"))
    else:
        form = SegmentForm(initial=SegmentForm.initial_for(segment) if segment else None)
    context["form"] = form
    template = "campaigns/segment_form.html"
    if _fragment(request):
        template += "#segment-form"
    return _render(request, template, context)


# --- Templates ------------------------------------------------------------------------------------


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "campaigns.view_messagetemplate")
    templates = MessageTemplate.objects.order_by("-is_active", "name")
    return _render(request, "campaigns/template_list.html", {"templates": templates})


def _template_or_404(pk: int) -> MessageTemplate:
    template = MessageTemplate.objects.filter(pk=pk).first()
    if template is None:
        raise NotFound(_("Template not found."))
    return template


def _test_form(request: HttpRequest, template: MessageTemplate, data=None) -> TestSendForm:
    initial = {"to": request.user.email} if template.gateway == "email" else None
    return TestSendForm(data, gateway=template.gateway, initial=initial, auto_id="test_%s")


@login_required
def template_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    require_perm(request.user, "campaigns.change_messagetemplate")
    template = _template_or_404(pk) if pk is not None else None
    if request.method == "POST":
        form = TemplateForm(request.POST)
        if form.is_valid():
            try:
                saved = services.template_save(
                    actor=request.user,
                    data=form.cleaned_data,
                    template_id=template.pk if template else None,
                )
            except DomainError as exc:
                if exc.is_access_error:
                    raise
                form.add_service_errors(exc.errors, exc.message)
            else:
                messages.success(request, _("Template “%(name)s” saved.") % {"name": saved.name})
                return _done(request, reverse("campaigns:template_edit", args=[saved.pk]))
    else:
        form = TemplateForm(initial=TemplateForm.initial_for(template) if template else None)
    context: dict[str, Any] = {"form": form, "template_obj": template}
    if template is not None and has_perm(request.user, "campaigns.send_campaign"):
        context["test_form"] = _test_form(request, template)
    page = "campaigns/template_form.html"
    if _fragment(request):
        page += "#template-form"
    return _render(request, page, context)


@login_required
@require_POST
def template_test_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the template to oneself, filled for a sample customer; says where it went."""
    require_perm(request.user, "campaigns.send_campaign")
    template = _template_or_404(pk)
    form = _test_form(request, template, request.POST)
    sent: dict[str, str] | None = None
    if form.is_valid():
        try:
            test = services.campaign_test_send(
                actor=request.user, template_id=template.pk, to=form.cleaned_data["to"]
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            for field, texts in (exc.errors or {"__all__": [exc.message]}).items():
                for text in texts:
                    form.add_error("to" if field == "to" else None, text)
        else:
            sent = {
                "to": form.cleaned_data["to"],
                "provider_id": test.provider_id,
                "in_outbox": test.provider_id.startswith("outbox-"),
                "body": test.body,
                "segments": test.segments,
            }
    context = {"template_obj": template, "test_form": form, "test_sent": sent}
    if _fragment(request):
        return _render(request, "campaigns/template_form.html#test-send-panel", context)
    context["form"] = TemplateForm(initial=TemplateForm.initial_for(template))
    return _render(request, "campaigns/template_form.html", context)


# --- Campaigns ------------------------------------------------------------------------------------


@login_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "campaigns.view_campaign")
    campaigns = Campaign.objects.select_related("template", "segment", "created_by").order_by("-id")
    context = _paged(request, campaigns)
    counts = recipient_counts([c.pk for c in context["rows"]])
    context["rows"] = [(c, counts[c.pk], sum(counts[c.pk].values())) for c in context["rows"]]
    context["live"] = any(c.status in LIVE_STATUSES for c, _counts, _total in context["rows"])
    template = "campaigns/campaign_list.html"
    if _fragment(request):
        template += "#campaign-table"
    return _render(request, template, context)


@login_required
def campaign_create(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "campaigns.send_campaign")
    if request.method == "POST":
        form = CampaignForm(request.POST)
        if form.is_valid():
            try:
                campaign = services.campaign_create(
                    actor=request.user, data=form.data_for_service()
                )
            except DomainError as exc:
                if exc.is_access_error:
                    raise
                form.add_service_errors(exc.errors, exc.message)
            else:
                messages.success(
                    request,
                    _("Campaign “%(name)s” created: check the message, then send it.")
                    % {"name": campaign.name},
                )
                return _done(request, campaign.get_absolute_url())
    else:
        initial = {}
        for key in ("segment", "template"):
            if str(request.GET.get(key, "")).isdigit():
                initial[key] = int(request.GET[key])
        form = CampaignForm(initial=initial)
    template = "campaigns/campaign_form.html"
    if _fragment(request):
        template += "#campaign-form"
    return _render(request, template, {"form": form})


def _campaign_or_404(pk: int) -> Campaign:
    campaign = Campaign.objects.select_related(
        "template", "segment", "created_by", "launched_by", "approved_by"
    ).filter(pk=pk)
    found = campaign.first()
    if found is None:
        raise NotFound(_("Campaign not found."))
    return found


def _counts_context(campaign: Campaign) -> dict[str, Any]:
    counts = recipient_counts([campaign.pk])[campaign.pk]
    return {
        "campaign": campaign,
        "counts": _count_rows(counts),
        "total": sum(counts.values()),
        "live": campaign.status in LIVE_STATUSES,
    }


@login_required
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The campaign, its message for a sample customer, live counts (polled while it sends) and
    a page of its recipients with masked addresses."""
    require_perm(request.user, "campaigns.view_campaign")
    campaign = _campaign_or_404(pk)
    context = _counts_context(campaign)
    if _fragment(request):
        return _render(request, "campaigns/campaign_detail.html#campaign-counts", context)
    now = timezone.now()
    sample_customer, subject, body = campaign_sample(campaign, today=timezone.localdate(now))
    filter_form = RecipientFilterForm(request.GET or None)
    recipients = campaign.recipients.select_related("customer").order_by("id")
    if filter_form.is_valid() and filter_form.cleaned_data.get("status"):
        recipients = recipients.filter(status=filter_form.cleaned_data["status"])
    paged = _paged(request, recipients)
    gateway = campaign.template.gateway
    paged["rows"] = [(r, address_masked(gateway, r.address)) for r in paged["rows"]]
    can_send = has_perm(request.user, "campaigns.send_campaign")
    finished = campaign.status in (Campaign.Status.DONE, Campaign.Status.CANCELLED)
    can_launch = can_send and campaign.status == Campaign.Status.DRAFT
    awaiting = campaign.status == Campaign.Status.AWAITING_APPROVAL
    estimate = campaign_estimate(campaign, now=now) if can_launch or awaiting else None
    gateway_kind = campaign.template.gateway
    context.update(
        paged,
        sample_customer=sample_customer,
        sample_subject=subject,
        sample_body=body,
        sample_segments=sms.sms_segments(body) if gateway_kind == "sms" else None,
        sample_length=sms.sms_length(body) if gateway_kind == "sms" else None,
        filter_form=filter_form,
        can_launch=can_launch,
        estimate=estimate,
        launch_form=CampaignLaunchForm(
            initial={"confirm_count": estimate.recipients if estimate else 0}
        ),
        schedules=bool(campaign.scheduled_at and campaign.scheduled_at > now),
        can_cancel=can_send and not finished,
        can_decide=awaiting and has_perm(request.user, services.APPROVE_PERM),
        refuse_form=CampaignRefuseForm(),
        events=list(
            CampaignEvent.objects.filter(campaign=campaign)
            .select_related("actor")
            .order_by("created_at", "id")
        ),
        quiet_wait=_quiet_wait(campaign, now),
    )
    return _render(request, "campaigns/campaign_detail.html", context)


def _quiet_wait(campaign: Campaign, now):
    """When a sending marketing campaign waits out the quiet hours: their end."""
    if campaign.status not in LIVE_STATUSES:
        return None
    return sms.quiet_until(
        campaign.template.gateway, marketing=campaign.template.is_marketing, now=now
    )


def _campaign_action(request: HttpRequest, pk: int, action, done_message: str) -> HttpResponse:
    try:
        action(actor=request.user, campaign_id=pk)
    except DomainError as exc:
        if exc.is_access_error:
            raise
        messages.error(request, exc.message)
    else:
        messages.success(request, done_message)
    return _done(request, reverse("campaigns:campaign_detail", args=[pk]))


def _error_messages(request: HttpRequest, exc: DomainError) -> None:
    for texts in (exc.errors or {"__all__": [exc.message]}).values():
        for text in texts:
            messages.error(request, text)


@login_required
@require_POST
def campaign_launch(request: HttpRequest, pk: int) -> HttpResponse:
    """Send now, or schedule for the campaign's time if that is still ahead: once the person
    has confirmed the number of recipients the page showed (and ticked the box)."""
    require_perm(request.user, "campaigns.send_campaign")
    _campaign_or_404(pk)
    url = reverse("campaigns:campaign_detail", args=[pk])
    form = CampaignLaunchForm(request.POST)
    if not form.is_valid():
        for texts in form.errors.values():
            for text in texts:
                messages.error(request, text)
        return _done(request, url)
    try:
        launched = services.campaign_launch(
            actor=request.user,
            campaign_id=pk,
            confirm_count=form.cleaned_data["confirm_count"],
        )
    except DomainError as exc:
        if exc.is_access_error:
            raise
        _error_messages(request, exc)
        return _done(request, url)
    if launched.status == Campaign.Status.AWAITING_APPROVAL:
        messages.success(
            request, _("Sent to the managers for approval: it goes out once one approves it.")
        )
    elif launched.status == Campaign.Status.SCHEDULED:
        messages.success(request, _("Campaign scheduled."))
    else:
        messages.success(request, _("Campaign queued: sending has started."))
    return _done(request, url)


@login_required
@require_POST
def campaign_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """A manager approves a campaign to a large audience."""
    require_perm(request.user, services.APPROVE_PERM)
    _campaign_or_404(pk)
    return _campaign_action(
        request, pk, services.campaign_approve, _("Approved: the campaign goes out.")
    )


@login_required
@require_POST
def campaign_refuse(request: HttpRequest, pk: int) -> HttpResponse:
    """A manager refuses a campaign to a large audience, saying why."""
    require_perm(request.user, services.APPROVE_PERM)
    _campaign_or_404(pk)
    url = reverse("campaigns:campaign_detail", args=[pk])
    form = CampaignRefuseForm(request.POST)
    if not form.is_valid():
        for texts in form.errors.values():
            for text in texts:
                messages.error(request, text)
        return _done(request, url)
    try:
        services.campaign_refuse(
            actor=request.user, campaign_id=pk, reason=form.cleaned_data["reason"]
        )
    except DomainError as exc:
        if exc.is_access_error:
            raise
        _error_messages(request, exc)
    else:
        messages.success(request, _("Refused: the campaign is a draft again."))
    return _done(request, url)


@login_required
@require_POST
def campaign_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    require_perm(request.user, "campaigns.send_campaign")
    _campaign_or_404(pk)
    message = _("Campaign cancelled: what was still waiting is not sent.")
    return _campaign_action(request, pk, services.campaign_cancel, message)


# --- Outbox ---------------------------------------------------------------------------------------


@login_required
def outbox_list(request: HttpRequest) -> HttpResponse:
    """What the local outbox gateway 'sent', newest first."""
    require_perm(request.user, "campaigns.view_outboxmessage")
    form = OutboxFilterForm(request.GET or None)
    outbox = OutboxMessage.objects.select_related("customer").order_by("-id")
    if form.is_valid() and form.cleaned_data.get("gateway"):
        outbox = outbox.filter(gateway=form.cleaned_data["gateway"])
    context = _paged(request, outbox)
    full = has_perm(request.user, "customers.view_full_contact")
    context["rows"] = [
        (m, address_shown(m.gateway, m.to) if full else address_masked(m.gateway, m.to))
        for m in context["rows"]
    ]
    context["filter_form"] = form
    template = "campaigns/outbox_list.html"
    if _fragment(request):
        template += "#outbox-results"
    return _render(request, template, context)


# --- Opt-outs and member benefits ---------------------------------------------------------------


def _customer_param(request: HttpRequest, value) -> Customer | None:
    """The customer named by ?customer=<id>, when the user may see them."""
    if not str(value or "").isdigit():
        return None
    try:
        return customer_get_for_user(user=request.user, customer_id=int(value))
    except NotFound:
        return None


def _visible_customer_field(request: HttpRequest, form, field: str = "customer") -> Customer | None:
    """The form's customer, through the gate; a form error naming the field otherwise."""
    customer = _customer_param(request, form.cleaned_data.get(field))
    if customer is None:
        form.add_error(field, _("No such customer."))
    return customer


@login_required
def optout_create(request: HttpRequest) -> HttpResponse:
    """Record that a customer wants no more bulk messages on a channel (or on any)."""
    require_perm(request.user, "campaigns.add_optout")
    customer_list_visible_to(user=request.user)  # the customer archive gate
    if request.method == "POST":
        form = OptOutForm(request.POST)
        customer = None
        if form.is_valid() and (customer := _visible_customer_field(request, form)):
            try:
                services.optout_record(
                    actor=request.user,
                    customer_id=customer.pk,
                    channel=form.cleaned_data["channel"],
                    source=form.cleaned_data["source"],
                )
            except DomainError as exc:
                if exc.is_access_error:
                    raise
                form.add_service_errors(exc.errors, exc.message)
            else:
                messages.success(
                    request,
                    _("%(customer)s gets no more bulk messages on that channel.")
                    % {"customer": customer.name},
                )
                return _done(request, customer.get_absolute_url())
        customer = customer or _customer_param(request, request.POST.get("customer"))
    else:
        customer = _customer_param(request, request.GET.get("customer"))
        form = OptOutForm(initial={"customer": customer.pk if customer else None})
    if customer is None:
        form.fields["customer"].widget = _visible_number()
    context = {"form": form, "customer": customer}
    if customer is not None:
        context["existing"] = list(customer.opt_outs.order_by("channel"))
    template = "campaigns/optout_form.html"
    if _fragment(request):
        template += "#optout-form"
    return _render(request, template, context)


def _visible_number() -> forms.NumberInput:
    return forms.NumberInput({"min": 1, "inputmode": "numeric"})


@login_required
def optout_list(request: HttpRequest) -> HttpResponse:
    _require_any(request.user, "campaigns.add_optout", "campaigns.view_optout")
    visible = customer_list_visible_to(user=request.user)
    form = OptOutFilterForm(request.GET or None)
    optouts = OptOut.objects.filter(customer__in=visible).select_related("customer", "recorded_by")
    if form.is_valid() and form.cleaned_data.get("channel"):
        optouts = optouts.filter(channel=form.cleaned_data["channel"])
    context = _paged(request, optouts.order_by("-created_at", "-id"))
    context["filter_form"] = form
    return _render(request, "campaigns/optout_list.html", context)


@login_required
def benefit_create(request: HttpRequest) -> HttpResponse:
    """Record a birthday or holiday gift handed to a member (once per occasion)."""
    require_perm(request.user, "campaigns.add_memberbenefit")
    customer_list_visible_to(user=request.user)
    if request.method == "POST":
        form = BenefitForm(request.POST)
        customer = None
        if form.is_valid() and (customer := _visible_customer_field(request, form)):
            try:
                benefit = services.benefit_record(
                    actor=request.user,
                    customer_id=customer.pk,
                    kind=form.cleaned_data["kind"],
                    occasion=form.cleaned_data["occasion"],
                    description=form.cleaned_data["description"],
                )
            except DomainError as exc:
                if exc.is_access_error:
                    raise
                form.add_service_errors(exc.errors, exc.message)
            else:
                messages.success(
                    request,
                    _("Benefit recorded for %(customer)s (%(occasion)s).")
                    % {"customer": customer.name, "occasion": benefit.occasion},
                )
                if has_perm(request.user, "campaigns.view_memberbenefit"):
                    url = reverse("campaigns:benefit_list") + f"?customer={customer.pk}"
                else:
                    url = customer.get_absolute_url()
                return _done(request, url)
        customer = customer or _customer_param(request, request.POST.get("customer"))
    else:
        customer = _customer_param(request, request.GET.get("customer"))
        form = BenefitForm(initial={"customer": customer.pk if customer else None})
    if customer is None:
        form.fields["customer"].widget = _visible_number()
    template = "campaigns/benefit_form.html"
    if _fragment(request):
        template += "#benefit-form"
    return _render(request, template, {"form": form, "customer": customer})


@login_required
def benefit_list(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "campaigns.view_memberbenefit")
    visible = customer_list_visible_to(user=request.user)
    form = BenefitFilterForm(request.GET or None)
    benefits = MemberBenefit.objects.filter(customer__in=visible).select_related(
        "customer", "given_by", "store"
    )
    if form.is_valid():
        if occasion := form.cleaned_data.get("occasion", "").strip():
            benefits = benefits.filter(occasion__icontains=occasion)
        if form.cleaned_data.get("kind"):
            benefits = benefits.filter(kind=form.cleaned_data["kind"])
    customer = _customer_param(request, request.GET.get("customer"))
    if customer is not None:
        benefits = benefits.filter(customer=customer)
    context = _paged(request, benefits.order_by("-given_at", "-id"))
    context.update(filter_form=form, customer=customer)
    return _render(request, "campaigns/benefit_list.html", context)
