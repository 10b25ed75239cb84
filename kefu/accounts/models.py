import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from kefu.accounts.roles import Role
from kefu.core.models import TimeStampedModel


class Team(TimeStampedModel):
    """A group of staff working one queue (hotline, online, complaints, records...)."""

    name = models.CharField(_("name"), max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class Store(TimeStampedModel):
    """A shop or branch of the company: customers belong to one, store managers run one."""

    code = models.CharField(_("store code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100, unique=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A member of staff. The role decides the group, and so the permissions."""

    employee_no = models.CharField(
        _("employee number"), max_length=20, unique=True, null=True, blank=True
    )
    display_name = models.CharField(_("display name"), max_length=50, blank=True)
    role = models.CharField(_("role"), max_length=32, choices=Role.choices, blank=True)
    team = models.ForeignKey(
        Team, models.SET_NULL, null=True, blank=True, related_name="members", verbose_name=_("team")
    )
    store = models.ForeignKey(
        Store, models.SET_NULL, null=True, blank=True, related_name="staff", verbose_name=_("store")
    )

    class Meta:
        ordering = ["username"]
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(TimeStampedModel):
    """A bearer token for an integration; only its SHA-256 is stored, the key is shown once."""

    user = models.ForeignKey(
        User, models.CASCADE, related_name="api_tokens", verbose_name=_("acts as")
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @staticmethod
    def generate_key() -> str:
        return "kefu_" + secrets.token_urlsafe(32)


class LoginFailure(models.Model):
    """A failed login, or one whose password is being checked: the throttle counts these per
    username and per address over the last KEFU_LOGIN_LOCK_SECONDS.

    A login that succeeds marks its username's rows `user_cleared` (the person proved the
    password), but they keep counting for the address they came from.
    """

    username = models.CharField(max_length=150)
    ip = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    user_cleared = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["username", "created_at"], name="loginfailure_user_idx"),
            models.Index(fields=["ip", "created_at"], name="loginfailure_ip_idx"),
            models.Index(fields=["created_at"], name="loginfailure_created_idx"),
        ]
        verbose_name = _("failed login")
        verbose_name_plural = _("failed logins")

    def __str__(self) -> str:
        return f"{self.username} from {self.ip} at {self.created_at:%Y-%m-%d %H:%M:%S}"
