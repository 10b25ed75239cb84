"""Building blocks shared by every app; no domain models live here."""

from django.db import models, transaction
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


def sequence_next(name: str, *, count: int = 1) -> int:
    """Reserve `count` consecutive values of the named sequence and return the first one.

    Must run inside the caller's transaction; the row lock serialises concurrent callers.
    """
    with transaction.atomic():
        Sequence.objects.get_or_create(name=name)
        seq = Sequence.objects.select_for_update().get(name=name)
        first = seq.value + 1
        seq.value += count
        seq.save(update_fields=["value"])
    return first
