"""Signed links to a ticket's status page for the customer: no login, valid for a configured
number of days, and useless for any other ticket."""

from django.core import signing
from django.urls import reverse

from kefu.tickets.exceptions import TicketNotFound
from kefu.tickets.models import Ticket, TicketConfig

SALT = "kefu.tickets.status"


def status_token_make(ticket: Ticket) -> str:
    # The number is signed with the id, so a token outlives no renumbering and cannot be guessed.
    return signing.dumps({"t": ticket.pk, "n": ticket.number}, salt=SALT, compress=True)


def status_path_for(ticket: Ticket) -> str:
    return reverse("ticket_status", args=[status_token_make(ticket)])


def status_token_read(token: str) -> Ticket:
    """The ticket a token opens, or TicketNotFound when it is forged, altered or expired."""
    max_age = TicketConfig.current().status_link_days * 24 * 3600
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
        return Ticket.objects.select_related("customer").get(pk=data["t"], number=data["n"])
    except (signing.BadSignature, Ticket.DoesNotExist, KeyError, TypeError):
        raise TicketNotFound("?") from None
