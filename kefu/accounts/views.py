from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from kefu.accounts import services
from kefu.accounts.forms import ApiTokenCreateForm, ThrottledLoginForm
from kefu.accounts.models import ApiToken
from kefu.core.exceptions import DomainError


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = ThrottledLoginForm
    redirect_authenticated_user = True


@login_required
@permission_required("accounts.view_apitoken", raise_exception=True)
def token_list(request: HttpRequest) -> HttpResponse:
    form = ApiTokenCreateForm(request.POST or None, initial={"user": request.user})
    new_key = None
    if (
        request.method == "POST"
        and request.user.has_perm("accounts.add_apitoken")
        and form.is_valid()
    ):
        try:
            _token, new_key = services.api_token_create(
                user=form.cleaned_data["user"], name=form.cleaned_data["name"], actor=request.user
            )
        except DomainError as exc:
            if exc.is_access_error:
                raise
            form.add_error(None, exc.message)
        else:
            form = ApiTokenCreateForm(initial={"user": request.user})
    tokens = ApiToken.objects.select_related("user", "created_by")
    return render(
        request, "accounts/token_list.html", {"form": form, "tokens": tokens, "new_key": new_key}
    )


@login_required
@permission_required("accounts.delete_apitoken", raise_exception=True)
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    services.api_token_revoke(token_id=pk, actor=request.user)
    messages.success(request, _("The token was revoked."))
    return redirect("accounts:token_list")
