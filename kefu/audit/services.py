"""The one way to write the audit log."""

from django.db import models

from kefu.audit.models import AuditEntry


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    changes: dict | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Record an action in the caller's transaction, so it is kept exactly when the action is."""
    if target is not None:
        target_type = target._meta.model_name or ""
        target_id = target.pk
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
        ip=ip,
    )


def model_diff(before: dict, after: dict) -> dict:
    """{field: [before, after]} for the fields whose value changed."""
    return {k: [before.get(k), after.get(k)] for k in after if before.get(k) != after.get(k)}
