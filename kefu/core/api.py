"""The REST API at /api/v1: one NinjaAPI, one router per app, one way to render errors."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import SessionAuth

from kefu.accounts.api import TokenAuth
from kefu.accounts.api import router as accounts_router
from kefu.appointments.api import router as appointments_router
from kefu.campaigns.api import router as campaigns_router
from kefu.conversations.api import router as conversations_router
from kefu.core.exceptions import DomainError
from kefu.customers.api import router as customers_router
from kefu.followups.api import router as followups_router
from kefu.jobs.api import router as jobs_router
from kefu.notifications.api import router as notifications_router
from kefu.tickets.api import router as tickets_router

api = NinjaAPI(
    title="Kefu API",
    version="1",
    description="Kefu customer service center. Authenticate with `Authorization: Bearer <token>`.",
    auth=[TokenAuth(), SessionAuth()],
    openapi_url="/openapi.json",
    docs_url="/docs",
    urls_namespace="api",
)
api.add_router("/accounts", accounts_router)
api.add_router("/customers", customers_router)
api.add_router("/tickets", tickets_router)
api.add_router("/followups", followups_router)
api.add_router("/conversations", conversations_router)
api.add_router("/campaigns", campaigns_router)
api.add_router("/appointments", appointments_router)
api.add_router("/notifications", notifications_router)
api.add_router("/jobs", jobs_router)


def error_response(
    request: HttpRequest, status: int, code: str, message: str, errors=None, /, **extra
) -> HttpResponse:
    # Positional-only, so an error's extra details may include a `status` (the ticket's status
    # in transition_not_allowed) without clashing with the HTTP status parameter.
    body = {"code": code, "message": str(message), "errors": errors or {}, **extra}
    return api.create_response(request, body, status=status)


def _field_name(loc: list) -> str:
    # ninja locations look like ["body", "payload", "phone"], ["query", "page"] or, for an
    # upload, ["file", "file"]: the first part names where the value came from.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "form", "file", "header", "cookie"):
        parts = parts[1:]
    parts = [p for p in parts if p != "payload"]
    return ".".join(parts) or "__all__"


@api.exception_handler(NinjaValidationError)
def on_validation_error(request, exc: NinjaValidationError):
    errors: dict[str, list[str]] = {}
    for err in exc.errors:
        field = _field_name(list(err.get("loc", [])))
        errors.setdefault(field, []).append(err.get("msg", _("Invalid value.")))
    if any(err.get("type") == "json_invalid" for err in exc.errors):
        return error_response(
            request, 400, "bad_request", _("The request body is not valid JSON."), errors
        )
    return error_response(request, 422, "invalid", _("Some fields are not valid."), errors)


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    return error_response(request, exc.status, exc.code, exc.message, exc.errors, **exc.extra)


@api.exception_handler(AuthenticationError)
def on_not_authenticated(request, exc):
    return error_response(
        request,
        401,
        "not_authenticated",
        _("Authentication credentials were not provided or are not valid."),
    )


@api.exception_handler(AuthorizationError)
@api.exception_handler(PermissionDenied)
def on_forbidden(request, exc):
    return error_response(
        request, 403, "permission_denied", _("You do not have permission to do this.")
    )


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error_response(request, 404, "not_found", _("Not found."))


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    codes = {
        400: "bad_request",
        401: "not_authenticated",
        403: "permission_denied",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
    }
    return error_response(request, exc.status_code, codes.get(exc.status_code, "error"), str(exc))
