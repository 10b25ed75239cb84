from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from kefu.core.navigation import nav_start_url

API_PREFIX = "/api/"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The user's start page (the first one registered in kefu.core.navigation that they may
    open), else a page of their own."""
    start = nav_start_url(request.user)
    if start is not None:
        return redirect(start)
    return render(request, "core/home.html", {"active_nav": "home"})


def _api_error(status: int, code: str, message: str) -> JsonResponse:
    """Under /api/ even a URL no operation matches answers in the API's error shape."""
    body = {"code": code, "message": message, "errors": {}}
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(403, "permission_denied", _("You do not have permission to do this."))
    return render(request, "core/error.html", {"status": 403, "exception": exception}, status=403)


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(404, "not_found", _("Not found."))
    return render(request, "core/error.html", {"status": 404, "exception": exception}, status=404)
