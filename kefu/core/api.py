"""The REST API at /api/v1: one NinjaAPI, one router per app, one way to render errors.

Core names no app above it: each app mounts its own router in its AppConfig.ready()
(`api_router_add("/tickets", router)`), and the accounts app, which owns the API tokens and the
login session, installs the API's authentication there (`api.auth`). Until it does, every
operation refuses (401): an API without authentication fails closed."""

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, AuthorizationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import REF_TEMPLATE, OpenAPISchema
from ninja.parser import Parser
from ninja.schema import NinjaGenerateJsonSchema

from kefu.core.exceptions import DomainError
from kefu.core.json_body import json_body_load
from kefu.core.schemas import ErrorOut

# What any operation may answer besides its success, all in the ErrorOut shape.
ERROR_RESPONSES = {
    400: "The body is not JSON (or nests too deep), or the request is malformed.",
    401: "No credentials, or a token that is not valid.",
    403: "The caller's role does not allow this.",
    404: "The record (or one the body names) does not exist or is not visible to the caller.",
    409: "The record's state does not allow this now (closed already, taken, a duplicate).",
    422: "Some fields are not valid: `errors` names each field with its messages.",
}


class JsonParser(Parser):
    """Request bodies through the one depth-limited JSON loader (kefu.core.json_body)."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json_body_load(request.body)


class KefuAPI(NinjaAPI):
    """The NinjaAPI whose OpenAPI document also declares every operation's error responses."""

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPISchema:
        schema = super().get_openapi_schema(**kwargs)
        error_schema = ErrorOut.model_json_schema(
            ref_template=REF_TEMPLATE, schema_generator=NinjaGenerateJsonSchema
        )
        schema["components"]["schemas"]["ErrorOut"] = error_schema
        error_content = {
            "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model="ErrorOut")}}
        }
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation["responses"]
                for status, description in ERROR_RESPONSES.items():
                    responses.setdefault(
                        status,
                        {
                            "description": f"{HTTPStatus(status).phrase}: {description}",
                            "content": error_content,
                        },
                    )
        return schema


def no_authentication_installed(request: HttpRequest) -> bool:
    """The API's authentication until an app installs its own: nobody is let in."""
    return False


api = KefuAPI(
    title="Kefu API",
    version="1",
    description="Kefu customer service center. Authenticate with `Authorization: Bearer <token>`.",
    auth=[no_authentication_installed],
    openapi_url="/openapi.json",
    docs_url="/docs",
    urls_namespace="api",
    parser=JsonParser(),
)


def api_router_add(prefix: str, router: Router) -> None:
    """Mount an app's router at /api/v1<prefix>: each app calls this in its AppConfig.ready().
    Mounting the same router again is a no-op (Django may run ready() twice)."""
    if any(mounted is router for _prefix, mounted in api._routers):
        return
    api.add_router(prefix, router)


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


def _validation_message(err: dict) -> str:
    """pydantic's message for a field, in the request's language where Kefu knows the error."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "missing":
        return _("This field is required.")
    if kind == "extra_forbidden":
        return _("This field is not expected here.")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _("Send a JSON object.")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return _("Enter a whole number.")
    if kind in ("float_parsing", "float_type", "decimal_parsing", "decimal_type"):
        return _("Enter a number.")
    if kind in ("bool_parsing", "bool_type"):
        return _("Enter true or false.")
    if kind in ("string_type",):
        return _("Enter text.")
    if kind in ("list_type",):
        return _("Enter a list of values.")
    if kind == "greater_than_equal" and "ge" in ctx:
        return _("Ensure this value is greater than or equal to %(limit_value)s.") % {
            "limit_value": ctx["ge"]
        }
    if kind == "less_than_equal" and "le" in ctx:
        return _("Ensure this value is less than or equal to %(limit_value)s.") % {
            "limit_value": ctx["le"]
        }
    if kind == "string_too_long" and "max_length" in ctx:
        return _("At most %(n)s characters.") % {"n": ctx["max_length"]}
    if kind == "string_too_short" and "min_length" in ctx:
        return ngettext(
            "At least %(n)s character.", "At least %(n)s characters.", ctx["min_length"]
        ) % {"n": ctx["min_length"]}
    if kind == "string_pattern_mismatch":
        return _("Enter a valid value.")
    if kind in ("date_out_of_bounds", "datetime_out_of_bounds"):
        return _("Enter a day from %(min)s to %(max)s.") % {"min": ctx["min"], "max": ctx["max"]}
    if kind.startswith("date_") or kind == "date_type":
        return _("Enter a valid date.")
    if kind.startswith(("datetime_", "timezone_")):
        return _("Enter a valid date/time.")
    return err.get("msg") or _("Enter a valid value.")


@api.exception_handler(NinjaValidationError)
def on_validation_error(request, exc: NinjaValidationError):
    errors: dict[str, list[str]] = {}
    for err in exc.errors:
        field = _field_name(list(err.get("loc", [])))
        errors.setdefault(field, []).append(_validation_message(err))
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
    if isinstance(exc.__cause__, DomainError):  # the body parser refused the body
        return on_domain_error(request, exc.__cause__)
    codes = {
        400: "bad_request",
        401: "not_authenticated",
        403: "permission_denied",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
    }
    return error_response(request, exc.status_code, codes.get(exc.status_code, "error"), str(exc))
