"""Building blocks shared by every app; no domain models live here."""

import datetime as dt

from django.db import IntegrityError, connection, models, transaction
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class Sequence(models.Model):
    """A named counter that only goes up: numbers handed out from it are never reused."""

    name = models.CharField(max_length=50, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class Lease(models.Model):
    """A claim on background work that one worker at a time may do (dispatching an SMS gateway,
    polling a mailbox). It lapses at `expires_at` unless its holder renews it, so the claim of a
    worker that was killed does not outlive it. Taken and renewed by conditional UPDATEs: see
    kefu/core/leases.py."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=100, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} {self.holder or '-'} {self.expires_at}"


def sequence_next(name: str, *, count: int = 1) -> int:
    """Reserve `count` consecutive values of the named sequence and return the first one.

    One UPDATE ... RETURNING takes the row lock and the values at once, so concurrent callers
    queue on the row and never get the same number.
    """
    table = connection.ops.quote_name(Sequence._meta.db_table)
    sql = f"UPDATE {table} SET value = value + %s WHERE name = %s RETURNING value"
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(sql, [count, name])
        row = cursor.fetchone()
        if row is None:
            Sequence.objects.get_or_create(name=name)
            cursor.execute(sql, [count, name])
            row = cursor.fetchone()
    return row[0] - count + 1


class SeenNonce(models.Model):
    """A one-time value (a nonce with its timestamp) a signed request carried, kept until that
    timestamp is outside the window the receiver accepts: a request coming back with it is a
    replay. In the database, so every web process shares what it has seen."""

    scope = models.CharField(max_length=100)
    value = models.CharField(max_length=200)
    # SHA-256 of what the value came with (the request body): the same request again is a retry.
    fingerprint = models.CharField(max_length=64)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "value"], name="seennonce_scope_value_unique")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.value}"


def nonce_claim(
    *, scope: str, value: str, fingerprint: str, expires_at: dt.datetime, now: dt.datetime
) -> bool:
    """Remember `value` in `scope` until `expires_at`. True the first time, and again when it
    comes with the same fingerprint (the sender retrying the same request); False when it comes
    back with anything else: a replay. Expired values are forgotten on the way."""
    SeenNonce.objects.filter(expires_at__lte=now).delete()
    try:
        with transaction.atomic():
            SeenNonce.objects.create(
                scope=scope[:100], value=value[:200], fingerprint=fingerprint, expires_at=expires_at
            )
    except IntegrityError:
        seen = SeenNonce.objects.filter(scope=scope[:100], value=value[:200]).first()
        return seen is not None and seen.fingerprint == fingerprint
    return True
