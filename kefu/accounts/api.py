from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Schema, security
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from kefu.accounts.services import api_token_authenticate
from kefu.core.exceptions import Forbidden

router = Router(tags=["accounts"])


class TokenAuth(HttpBearer):
    """`Authorization: Bearer kefu_...` with a token an administrator created."""

    def authenticate(self, request: HttpRequest, token: str):
        user = api_token_authenticate(token)
        if user is not None:
            request.user = user
        return user


class SessionAuth(security.SessionAuth):
    """The page session (cookie) of a logged-in user, with Django's CSRF check on writes. A
    request with no session is not authenticated (401) rather than refused for its CSRF token:
    an integration that forgot its token is told so."""

    def _get_key(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise Forbidden(
                _("The page's security token (CSRF) is missing or out of date: reload the page."),
                code="csrf_failed",
            )
        return request.COOKIES.get(self.param_name)


class MeOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    permissions: list[str]


@router.get("/me", response=MeOut, summary="The authenticated user")
def me(request: HttpRequest):
    user = request.auth
    return MeOut(
        id=user.pk,
        username=user.username,
        display_name=str(user),
        role=user.role,
        permissions=sorted(user.get_all_permissions()),
    )
