"""E-mail to a department's shared mailbox, for departments whose people work from e-mail."""

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.translation import gettext as _

from kefu.tickets.models import TicketHandoff


def handoff_email_send(*, handoff_id: int, urge_count: int) -> bool:
    """Send the hand-off (urge_count 0) or its n-th urge to the department's address."""
    handoff = (
        TicketHandoff.objects.select_related("ticket__customer", "department")
        .filter(pk=handoff_id)
        .first()
    )
    if handoff is None or not handoff.department.email:
        return False
    if urge_count and (handoff.status != TicketHandoff.Status.OPEN):
        return False  # answered in the meantime: no urge
    ticket = handoff.ticket
    due = timezone.localtime(handoff.due_at).strftime("%Y-%m-%d %H:%M")
    if urge_count:
        subject = _("[Urge %(n)s] %(number)s %(subject)s — answer due %(due)s")
    else:
        subject = _("[Hand-off] %(number)s %(subject)s — answer due %(due)s")
    subject = subject % {
        "n": urge_count,
        "number": ticket.number,
        "subject": ticket.subject,
        "due": due,
    }
    body = "\n\n".join(
        [
            handoff.instructions,
            _("Ticket: %(number)s, customer %(customer)s")
            % {"number": ticket.number, "customer": ticket.customer.number},
            settings.BASE_URL + ticket.get_absolute_url(),
        ]
    )
    EmailMessage(
        subject=" ".join(subject.split()),
        body=body + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[handoff.department.email],
    ).send()
    return True
