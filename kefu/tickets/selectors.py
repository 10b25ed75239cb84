"""Reads of tickets and the one gate for who sees which ticket."""

from django.db.models import Prefetch, Q, QuerySet

from kefu.accounts.models import User
from kefu.accounts.roles import Role
from kefu.core.exceptions import Forbidden
from kefu.tickets.exceptions import TicketNotFound
from kefu.tickets.models import (
    Category,
    Department,
    QueueMember,
    Ticket,
    TicketEvent,
    TicketHandoff,
)


def ticket_list_visible_to(*, user: User | None) -> QuerySet[Ticket]:
    """Every ticket the user may see: all of them (customer service), their store's (store
    managers), or those handed to a department they handle (department handlers)."""
    tickets = Ticket.objects.all()
    if user is None:
        return tickets
    if not (user.is_active and user.has_perm("tickets.view_ticket")):
        raise Forbidden()
    if user.has_perm("tickets.view_all_tickets"):
        return tickets
    visible = Q(pk__in=[])
    if user.store_id is not None and user.role == Role.STORE_MANAGER:
        visible |= Q(store_id=user.store_id)
    if user.has_perm("tickets.answer_handoff"):
        # The ids first: as a correlated EXISTS, PostgreSQL plans a parallel scan of the whole
        # ticket table at 1M rows (350 ms); a handler's hand-offs are a short list.
        handed = TicketHandoff.objects.filter(department__handlers=user).values_list(
            "ticket_id", flat=True
        )
        visible |= Q(pk__in=list(handed))
    return tickets.filter(visible)


def ticket_get_for_user(*, user: User | None, ticket_id: int, for_update: bool = False) -> Ticket:
    """Load one ticket on the user's behalf (locked for update when asked)."""
    tickets = ticket_list_visible_to(user=user)
    if for_update:
        tickets = tickets.select_for_update(of=("self",))
    try:
        return tickets.get(pk=ticket_id)
    except (Ticket.DoesNotExist, ValueError, TypeError):
        raise TicketNotFound(ticket_id) from None


def ticket_list_for_display(tickets: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """What list pages and the API need per row, in a fixed number of queries."""
    return tickets.select_related("customer", "assignee", "queue", "category")


def ticket_get_detail(*, user: User | None, ticket_id: int) -> Ticket:
    tickets = (
        ticket_list_visible_to(user=user)
        .select_related(
            "customer",
            "assignee",
            "category__parent",
            "queue",
            "department",
            "store",
            "sla_policy",
            "root_cause",
            "created_by",
        )
        .prefetch_related(
            "tags",
            "attachments",
            "external_escalations",
            Prefetch(
                "handoffs",
                queryset=TicketHandoff.objects.select_related(
                    "department", "requested_by", "answered_by"
                ),
            ),
        )
    )
    try:
        return tickets.get(pk=ticket_id)
    except (Ticket.DoesNotExist, ValueError, TypeError):
        raise TicketNotFound(ticket_id) from None


def ticket_timeline(*, ticket: Ticket, public_only: bool = False) -> QuerySet[TicketEvent]:
    events = ticket.events.select_related("actor")
    if public_only:
        events = events.filter(is_public=True)
    return events


def ticket_open_handoff(*, ticket: Ticket) -> TicketHandoff | None:
    return ticket.handoffs.filter(status=TicketHandoff.Status.OPEN).first()


def handoff_list_for_handler(*, user: User) -> QuerySet[TicketHandoff]:
    """The department queue: open hand-offs to the departments the user handles, oldest due first."""
    return (
        TicketHandoff.objects.filter(status=TicketHandoff.Status.OPEN, department__handlers=user)
        .select_related("ticket__customer", "department", "requested_by")
        .order_by("due_at", "id")
    )


def category_choices() -> list[tuple[int, str]]:
    """Active categories as (id, "parent › child") pairs, in tree order."""
    rows = {
        pk: (name, parent)
        for pk, name, parent in Category.objects.values_list("pk", "name", "parent_id")
    }
    active = Category.objects.filter(is_active=True).values_list("pk", flat=True)

    def path(pk: int) -> str:  # the whole tree is in `rows`: one query, however deep
        names, seen = [], set()
        node: int | None = pk
        while node is not None and node in rows and node not in seen:
            seen.add(node)
            names.append(rows[node][0])
            node = rows[node][1]
        return " › ".join(reversed(names))

    return sorted(((pk, path(pk)) for pk in active), key=lambda pair: pair[1])


def category_descendant_ids(category_ids: list[int]) -> set[int]:
    """The categories and every subcategory below them."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Category.objects.values_list("pk", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    found, stack = set(), list(category_ids)
    while stack:
        pk = stack.pop()
        if pk in found:
            continue
        found.add(pk)
        stack.extend(children.get(pk, []))
    return found


def staff_to_escalate(*, level: int, ticket: Ticket) -> list[User]:
    """Who an escalation reaches: level 1 the supervisors (of the queue's team when it has one),
    level 2 and above the managers."""
    role = Role.SUPERVISOR if level <= 1 else Role.MANAGER
    users = User.objects.filter(is_active=True, role=role)
    if role == Role.SUPERVISOR and ticket.queue_id and ticket.queue and ticket.queue.team_id:
        team_users = users.filter(team_id=ticket.queue.team_id)
        if team_users.exists():
            users = team_users
    return list(users)


def department_handlers(*, department: Department) -> list[User]:
    return list(department.handlers.filter(is_active=True))


def queue_duty_of(*, user: User) -> bool | None:
    """Whether the user is on duty in their queues: None when they are in no queue."""
    states = set(QueueMember.objects.filter(user=user).values_list("is_on_duty", flat=True))
    if not states:
        return None
    return True in states
