from django.db.models import QuerySet

from kefu.audit.models import AuditEntry


def audit_list_for(*, target_type: str, target_id: int | str) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(
        target_type=target_type, target_id=str(target_id)
    ).select_related("actor")
