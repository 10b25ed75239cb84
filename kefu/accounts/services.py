"""Writes for staff accounts, API tokens and the failed-login throttle."""

import datetime as dt
import ipaddress

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kefu.accounts.models import ApiToken, LoginFailure, Store, Team, User
from kefu.accounts.roles import Role, role_group_name
from kefu.audit.services import audit_record
from kefu.core.exceptions import NotFound, ValidationFailed


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None,
    role: str,
    display_name: str = "",
    employee_no: str | None = None,
    team: Team | None = None,
    store: Store | None = None,
    email: str = "",
    actor: User | None = None,
) -> User:
    """Create a member of staff in one role."""
    if role not in Role.values:
        raise ValidationFailed({"role": [_("Unknown role.")]})
    if User.objects.filter(username=username).exists():
        raise ValidationFailed({"username": [_("This username is taken.")]})
    if employee_no and User.objects.filter(employee_no=employee_no).exists():
        raise ValidationFailed({"employee_no": [_("This employee number is taken.")]})
    user = User(
        username=username,
        display_name=display_name,
        employee_no=employee_no or None,
        team=team,
        store=store,
        email=email,
        role=role,
        is_staff=role == Role.ADMINISTRATOR,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    user_set_role(user=user, role=role, actor=actor)
    audit_record(actor=actor, action="user.created", target=user, changes={"role": [None, role]})
    return user


@transaction.atomic
def user_set_role(*, user: User, role: str, actor: User | None = None) -> User:
    """Put the user in exactly one role group."""
    if role not in Role.values:
        raise ValidationFailed({"role": [_("Unknown role.")]})
    previous = user.role
    role_groups = Group.objects.filter(name__startswith="role:")
    user.groups.remove(*role_groups)
    group, _created = Group.objects.get_or_create(name=role_group_name(role))
    user.groups.add(group)
    if previous != role:
        user.role = role
        # Only administrators (and superusers) get into the administration site.
        user.is_staff = role == Role.ADMINISTRATOR or user.is_superuser
        user.save(update_fields=["role", "is_staff"])
        audit_record(
            actor=actor, action="user.role_changed", target=user, changes={"role": [previous, role]}
        )
    # Permission caches on the instance are stale now.
    for attr in ("_perm_cache", "_group_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(attr, None)
    return user


@transaction.atomic
def api_token_create(*, user: User, name: str, actor: User | None) -> tuple[ApiToken, str]:
    """Create a token acting as `user`; returns the token and its key, which is never shown again."""
    if not name.strip():
        raise ValidationFailed({"name": [_("Give the token a name.")]})
    key = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user,
        name=name.strip(),
        prefix=key[:12],
        key_hash=ApiToken.hash_key(key),
        created_by=actor,
    )
    audit_record(
        actor=actor,
        action="api_token.created",
        target=token,
        changes={"user": [None, user.username]},
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, token_id: int, actor: User | None) -> ApiToken:
    try:
        token = ApiToken.objects.select_for_update().get(pk=token_id)
    except ApiToken.DoesNotExist:
        raise NotFound(_("API token not found.")) from None
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        audit_record(actor=actor, action="api_token.revoked", target=token)
    return token


def api_token_authenticate(key: str) -> User | None:
    """The user a bearer key acts as, or None."""
    try:
        token = (
            ApiToken.objects.active().select_related("user").get(key_hash=ApiToken.hash_key(key))
        )
    except ApiToken.DoesNotExist:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


# --- Failed-login throttle --------------------------------------------------------------------
#
# An attempt is written as a failure before its password is checked and counted with the others
# of its username and of its address in the window: so parallel guesses cannot all pass the check
# before the first failure is recorded. A success marks its username's failures cleared; the
# address keeps counting them (else logging in to one's own account would reset the address).


def login_username_key(username: str) -> str:
    """The username as authentication reads it (NFKC, like Django's login form), with case and
    surrounding space folded: ａgent07, Agent07 and agent07 share one counter."""
    return User.normalize_username(str(username)).strip().casefold()[:150]


def _login_window_start(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=settings.LOGIN_LOCK_SECONDS)


def login_attempt_start(*, username: str, ip: str, now: dt.datetime) -> LoginFailure | None:
    """Count a login attempt from the start; None (and nothing counted) when the username or the
    address has had too many failures in the window and the password must not be checked."""
    key = login_username_key(username)
    ip = (ip or "unknown")[:64]
    since = _login_window_start(now)
    LoginFailure.objects.filter(created_at__lte=since).delete()
    attempt = LoginFailure.objects.create(username=key, ip=ip, created_at=now)
    recent = LoginFailure.objects.filter(created_at__gt=since)
    by_user = recent.filter(username=key, user_cleared=False).count()
    by_address = recent.filter(ip=ip).count()
    if by_user > settings.LOGIN_MAX_FAILURES or by_address > settings.LOGIN_MAX_ADDRESS_FAILURES:
        attempt.delete()
        return None
    return attempt


def login_attempt_failed(attempt: LoginFailure) -> None:
    """The password was wrong: the attempt stays counted and goes into the audit log."""
    try:
        ip: str | None = str(ipaddress.ip_address(attempt.ip))
    except ValueError:
        ip = None
    audit_record(
        actor=None, action="login.failed", target_type="user", target_id=attempt.username, ip=ip
    )


@transaction.atomic
def login_attempt_succeeded(attempt: LoginFailure) -> None:
    """The person proved the password: the username starts afresh, the address does not."""
    LoginFailure.objects.filter(pk=attempt.pk).delete()
    LoginFailure.objects.filter(username=attempt.username).update(user_cleared=True)


def login_attempt_abandoned(attempt: LoginFailure) -> None:
    """No password was checked (the form was incomplete): the attempt is not counted."""
    LoginFailure.objects.filter(pk=attempt.pk).delete()
