from django.http import HttpRequest
from ninja import Router, Schema
from ninja.security import HttpBearer

from kefu.accounts.services import api_token_authenticate

router = Router(tags=["accounts"])


class TokenAuth(HttpBearer):
    """`Authorization: Bearer kefu_...` with a token an administrator created."""

    def authenticate(self, request: HttpRequest, token: str):
        user = api_token_authenticate(token)
        if user is not None:
            request.user = user
        return user


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
