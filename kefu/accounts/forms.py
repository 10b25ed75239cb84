from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.accounts.models import User
from kefu.accounts.services import (
    login_attempt_abandoned,
    login_attempt_failed,
    login_attempt_start,
    login_attempt_succeeded,
)
from kefu.core.forms import FieldNamedErrorsMixin


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


class LoginThrottleMixin:
    """Refuses a username or an address after repeated failures (accounts.services), on the
    staff login and on the administration site's login alike."""

    throttle_error_messages = {
        "locked": _("Too many failed logins. Try again in %(minutes)s minutes."),
    }

    def clean(self):
        username = self.data.get(self.add_prefix("username"), "")
        attempt = login_attempt_start(
            username=username, ip=client_ip(self.request), now=timezone.now()
        )
        if attempt is None:
            raise ValidationError(
                self.throttle_error_messages["locked"],
                code="locked",
                params={"minutes": max(1, settings.LOGIN_LOCK_SECONDS // 60)},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            login_attempt_failed(attempt)
            raise
        if self.get_user() is None:
            login_attempt_abandoned(attempt)  # a field was missing: no password was checked
        else:
            login_attempt_succeeded(attempt)
        return cleaned


class ThrottledLoginForm(LoginThrottleMixin, AuthenticationForm):
    """The staff login form."""


class ThrottledAdminLoginForm(LoginThrottleMixin, AdminAuthenticationForm):
    """The administration site's login form."""


class ApiTokenCreateForm(FieldNamedErrorsMixin, forms.Form):
    name = forms.CharField(label=pgettext_lazy("api token", "Name"), max_length=100)
    user = forms.ModelChoiceField(label=_("Acts as"), queryset=User.objects.filter(is_active=True))
