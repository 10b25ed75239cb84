"""Customer pages: parse → gate (selectors) → service → render; HTMX gets fragments of the same templates."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from kefu.audit.selectors import audit_list_for
from kefu.conversations.selectors import customer_call_history, customer_conversation_history
from kefu.core.exceptions import DomainError, ValidationFailed
from kefu.core.permissions import require_perm
from kefu.customers import display, services
from kefu.customers.filtersets import CustomerFilterSet
from kefu.customers.forms import (
    ContactAddForm,
    CustomerCreateForm,
    CustomerForm,
    LifecycleForm,
    MergeForm,
)
from kefu.customers.models import Customer
from kefu.customers.selectors import (
    customer_duplicates_of,
    customer_get_for_user,
    customer_get_profile,
    customer_list_for_display,
    customer_list_visible_to,
    customer_timeline,
)

PAGE_SIZE = 25


@login_required
def customer_list(request: HttpRequest) -> HttpResponse:
    customers = customer_list_visible_to(user=request.user).live()
    filterset = CustomerFilterSet(request.GET or None, queryset=customers)
    rows = (
        filterset.qs.order_by("-id")
        if filterset.is_bound and filterset.is_valid()
        else customers.order_by("-id")
    )
    page = Paginator(customer_list_for_display(rows), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "page": page,
        "query": query.urlencode(),
        "active_nav": "customers",
    }
    template = "customers/customer_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


def _profile_context(request: HttpRequest, customer: Customer, **extra) -> dict:
    user = request.user
    context = {
        "customer": customer,
        "timeline": customer_timeline(customer=customer),
        "can_reveal": user.has_perm("customers.view_full_contact"),
        "can_edit": user.has_perm("customers.change_customer") and not customer.is_merged(),
        "can_merge": user.has_perm("customers.merge_customer") and not customer.is_merged(),
        "lifecycle_form": LifecycleForm(auto_id="lifecycle_%s"),
        "merge_form": MergeForm(auto_id="merge_%s"),
        "contact_form": ContactAddForm(auto_id="contact_%s"),
        "active_nav": "customers",
    }
    context["timeline"] = [(e, display.event_detail(e)) for e in context["timeline"]]
    if user.has_perm("customers.view_customer_audit"):
        entries = audit_list_for(target_type="customer", target_id=customer.pk)[:100]
        context["audit_entries"] = [
            (e, display.audit_action_label(e.action), display.audit_changes(e)) for e in entries
        ]
    if user.has_perm("conversations.view_conversation"):
        context["conversations"] = customer_conversation_history(customer_id=customer.pk)
    if user.has_perm("conversations.view_callrecord"):
        context["calls"] = customer_call_history(customer_id=customer.pk)
    if context["can_merge"]:
        context["possible_duplicates"] = customer_duplicates_of(user=user, customer=customer)
    context.update(extra)
    return context


@login_required
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = customer_get_profile(user=request.user, customer_id=pk)
    return render(request, "customers/customer_detail.html", _profile_context(request, customer))


@login_required
def customer_create(request: HttpRequest) -> HttpResponse:
    require_perm(request.user, "customers.add_customer")
    form = CustomerCreateForm(request.POST or None, initial={"store": request.user.store})
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_create(
                actor=request.user,
                data=form.profile_data(),
                contacts=form.contacts(),
                addresses=form.addresses(),
                tags=form.tag_names(),
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            form.add_service_errors(exc.errors or {"__all__": [exc.message]})
        else:
            messages.success(
                request, _("Customer %(number)s created.") % {"number": customer.number}
            )
            if request.htmx:
                return HttpResponseClientRedirect(customer.get_absolute_url())
            return redirect(customer)
    template = "customers/customer_form.html" + ("#customer-form" if request.htmx else "")
    return render(request, template, {"form": form, "active_nav": "customers"})


@login_required
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    require_perm(request.user, "customers.change_customer")
    customer = customer_get_profile(user=request.user, customer_id=pk)
    initial = {f: getattr(customer, f) for f in CustomerForm.profile_fields}
    initial["tags"] = ", ".join(t.name for t in customer.tags.all())
    initial.update({f"custom_{k}": v for k, v in customer.custom_fields.items()})
    form = CustomerForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.customer_update(
                actor=request.user,
                customer_id=customer.pk,
                data=form.profile_data(),
                tags=form.tag_names(),
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            form.add_service_errors(exc.errors or {"__all__": [exc.message]})
        else:
            messages.success(request, _("Changes saved."))
            if request.htmx:
                return HttpResponseClientRedirect(customer.get_absolute_url())
            return redirect(customer)
    template = "customers/customer_form.html" + ("#customer-form" if request.htmx else "")
    return render(
        request, template, {"form": form, "customer": customer, "active_nav": "customers"}
    )


def _action_result(
    request: HttpRequest, customer_id: int, form_name: str, form, error: DomainError | None
) -> HttpResponse:
    """After a profile action: errors re-render the panel (200 for htmx), success reloads the profile."""
    if error is None:
        if request.htmx:
            return HttpResponseClientRedirect(
                customer_get_for_user(user=request.user, customer_id=customer_id).get_absolute_url()
            )
        return redirect("customers:customer_detail", pk=customer_id)
    if isinstance(error, ValidationFailed):
        for field, msgs in error.errors.items():
            for m in msgs:
                form.add_error(field if field in form.fields else None, m)
    else:
        form.add_error(None, error.message)
    customer = customer_get_profile(user=request.user, customer_id=customer_id)
    context = _profile_context(request, customer, **{form_name: form})
    panel = {
        "lifecycle_form": "#lifecycle-panel",
        "merge_form": "#merge-panel",
        "contact_form": "#contacts-panel",
    }[form_name]
    template = "customers/customer_detail.html" + (panel if request.htmx else "")
    return render(request, template, context, status=200 if request.htmx else 400)


@login_required
@require_POST
def customer_lifecycle(request: HttpRequest, pk: int) -> HttpResponse:
    form = LifecycleForm(request.POST, auto_id="lifecycle_%s")
    error = None
    if form.is_valid():
        try:
            services.customer_change_lifecycle(
                actor=request.user,
                customer_id=pk,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            error = exc
    else:
        error = ValidationFailed({})
    return _action_result(request, pk, "lifecycle_form", form, error)


@login_required
@require_POST
def customer_merge(request: HttpRequest, pk: int) -> HttpResponse:
    form = MergeForm(request.POST, auto_id="merge_%s")
    error = None
    if form.is_valid():
        number = form.cleaned_data["duplicate_number"].strip().upper()
        duplicate = customer_list_visible_to(user=request.user).filter(number=number).first()
        if duplicate is None:
            error = ValidationFailed(
                {
                    "duplicate_number": [
                        _("No customer has the number %(number)s.") % {"number": number}
                    ]
                }
            )
        else:
            try:
                services.customer_merge(
                    actor=request.user,
                    target_id=pk,
                    duplicate_id=duplicate.pk,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                if exc.is_access_error:
                    raise
                error = exc
    else:
        error = ValidationFailed({})
    if error is None:
        messages.success(request, _("Records merged."))
    return _action_result(request, pk, "merge_form", form, error)


@login_required
@require_POST
def customer_contact_add(request: HttpRequest, pk: int) -> HttpResponse:
    form = ContactAddForm(request.POST, auto_id="contact_%s")
    error = None
    if form.is_valid():
        try:
            services.customer_add_contact(actor=request.user, customer_id=pk, **form.cleaned_data)
        except DomainError as exc:
            if exc.is_access_error:
                raise
            error = exc
    else:
        error = ValidationFailed({})
    return _action_result(request, pk, "contact_form", form, error)


@login_required
@require_POST
def customer_contact_remove(request: HttpRequest, pk: int, contact_id: int) -> HttpResponse:
    services.customer_remove_contact(actor=request.user, customer_id=pk, contact_id=contact_id)
    return _action_result(request, pk, "contact_form", ContactAddForm(), None)


@login_required
@require_POST
def customer_contact_reveal(request: HttpRequest, pk: int, contact_id: int) -> HttpResponse:
    """Reveal one contact in place (audited); the value is never put in the page before this."""
    value = services.customer_reveal_contact(
        actor=request.user,
        customer_id=pk,
        contact_id=contact_id,
        ip=request.META.get("REMOTE_ADDR"),
    )
    return render(request, "customers/customer_detail.html#revealed-contact", {"value": value})
