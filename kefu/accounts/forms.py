from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kefu.accounts.models import User
from kefu.accounts.services import login_is_locked, login_record_failure, login_reset
from kefu.core.forms import FieldNamedErrorsMixin


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


class ThrottledLoginForm(AuthenticationForm):
    """The login form, refusing a username or address after repeated failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": _("Too many failed logins. Try again in %(minutes)s minutes."),
    }

    def clean(self):
        from django.conf import settings

        username = self.data.get("username", "")
        ip = client_ip(self.request)
        if login_is_locked(username=username, ip=ip):
            raise ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": max(1, settings.LOGIN_LOCK_SECONDS // 60)},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            login_record_failure(username=username, ip=ip)
            raise
        login_reset(username=username, ip=ip)
        return cleaned


class ApiTokenCreateForm(FieldNamedErrorsMixin, forms.Form):
    name = forms.CharField(label=pgettext_lazy("api token", "Name"), max_length=100)
    user = forms.ModelChoiceField(label=_("Acts as"), queryset=User.objects.filter(is_active=True))
