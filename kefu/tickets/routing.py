"""Which queue a new ticket lands in and which agent takes it.

The first active queue (by position) whose types and categories match takes the ticket. A
round-robin queue hands it to the agent on duty who has waited longest since their last ticket,
among those under the queue's load cap. A complaint that no queue takes goes round-robin to the
complaint specialists, as 客诉专员 handle every complaint.
"""

import datetime as dt

from django.db.models import Count, F, Q

from kefu.accounts.models import User
from kefu.accounts.roles import Role
from kefu.tickets.models import Queue, QueueMember, Ticket
from kefu.tickets.selectors import category_descendant_ids

# Load cap when complaints go to the complaint specialists without a queue.
DEFAULT_MAX_OPEN = 30


def queue_for(ticket: Ticket) -> Queue | None:
    queues = Queue.objects.filter(is_active=True).prefetch_related("categories")
    for queue in queues:
        if queue.ticket_types and ticket.type not in queue.ticket_types:
            continue
        category_ids = [c.pk for c in queue.categories.all()]
        if category_ids and (
            ticket.category_id is None
            or ticket.category_id not in category_descendant_ids(category_ids)
        ):
            continue
        return queue
    return None


def _open_counts(user_ids: list[int]) -> dict[int, int]:
    rows = (
        Ticket.objects.open()
        .filter(assignee_id__in=user_ids)
        .values("assignee_id")
        .annotate(n=Count("id"))
    )
    return {row["assignee_id"]: row["n"] for row in rows}


def agent_pick(queue: Queue | None, ticket: Ticket, *, now: dt.datetime) -> User | None:
    """The next agent for the ticket (round robin with load caps), or None to leave it waiting.

    The caller holds the queue's row lock (or, without a queue, runs in its own transaction), so
    two tickets arriving together do not go to the same agent by accident.
    """
    if queue is not None:
        if queue.mode != Queue.Mode.ROUND_ROBIN:
            return None
        members = list(
            QueueMember.objects.filter(queue=queue, is_on_duty=True, user__is_active=True)
            .select_related("user")
            .order_by(F("last_assigned_at").asc(nulls_first=True), "id")
        )
        counts = _open_counts([m.user_id for m in members])
        for member in members:
            if counts.get(member.user_id, 0) < queue.max_open_per_agent:
                member.last_assigned_at = now
                member.save(update_fields=["last_assigned_at"])
                return member.user
        return None
    if ticket.type != Ticket.Type.COMPLAINT:
        return None
    specialists = list(User.objects.filter(is_active=True, role=Role.COMPLAINT_SPECIALIST))
    if not specialists:
        return None
    counts = _open_counts([u.pk for u in specialists])
    last = dict(
        Ticket.objects.filter(assignee__in=specialists)
        .values("assignee_id")
        .annotate(last=Count("id", filter=Q(created_at__gte=now - dt.timedelta(days=1))))
        .values_list("assignee_id", "last")
    )
    candidates = [u for u in specialists if counts.get(u.pk, 0) < DEFAULT_MAX_OPEN]
    if not candidates:
        return None
    # Fewest open tickets first, then fewest taken today, then the longest-standing account.
    return min(candidates, key=lambda u: (counts.get(u.pk, 0), last.get(u.pk, 0), u.pk))
