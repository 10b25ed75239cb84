"""Domain errors: raised by services, rendered by the API handler and attached to forms by views."""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A business rule refused the action. `status` is the HTTP status the API answers with."""

    code = "domain_error"
    status = 400

    def __init__(self, message, *, code: str | None = None, errors: dict | None = None, **extra):
        super().__init__(str(message))
        self.message = message
        if code:
            self.code = code
        self.errors = errors or {}
        self.extra = extra

    @property
    def is_access_error(self) -> bool:
        """Not found or not allowed: pages show the 404/403 page instead of a form error."""
        return self.status in (403, 404)


class ValidationFailed(DomainError):
    """Input broke a rule; `errors` maps each field to its messages."""

    code = "invalid"
    status = 422

    def __init__(self, errors: dict, message=None, **extra):
        errors = {
            field: [str(m) for m in (msgs if isinstance(msgs, list | tuple) else [msgs])]
            for field, msgs in errors.items()
        }
        super().__init__(message or _("Some fields are not valid."), errors=errors, **extra)


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Forbidden(DomainError):
    code = "permission_denied"
    status = 403

    def __init__(self, message=None, **kwargs):
        super().__init__(message or _("You do not have permission to do this."), **kwargs)


class Conflict(DomainError):
    code = "conflict"
    status = 409
