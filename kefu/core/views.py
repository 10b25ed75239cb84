from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.user.has_perm("customers.view_customer"):
        return redirect("customers:customer_list")
    if request.user.has_perm("tickets.answer_handoff"):
        return redirect("tickets:handoff_list")
    if request.user.has_perm("tickets.view_ticket"):
        return redirect("tickets:ticket_list")
    return render(request, "core/home.html", {"active_nav": "home"})


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return render(request, "core/error.html", {"status": 403, "exception": exception}, status=403)


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return render(request, "core/error.html", {"status": 404, "exception": exception}, status=404)
