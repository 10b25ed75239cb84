from django.utils.translation import gettext_lazy as _

from kefu.core.exceptions import Conflict, NotFound


class TicketNotFound(NotFound):
    code = "ticket_not_found"

    def __init__(self, ticket_id):
        super().__init__(_("Ticket %(id)s not found.") % {"id": ticket_id})


class TicketTransitionNotAllowed(Conflict):
    """The ticket's status does not allow the action (resolve a closed ticket...)."""

    code = "transition_not_allowed"

    def __init__(self, *, action: str, status: str, message=None):
        super().__init__(
            message
            or _("A ticket that is “%(status)s” cannot be “%(action)s”.")
            % {"status": status, "action": action},
            action=str(action),
            ticket_status=str(status),
        )


class TicketReopenWindowPassed(Conflict):
    code = "reopen_window_passed"


class HandoffNotOpen(Conflict):
    code = "handoff_not_open"


class AcceptanceAlreadyRecorded(Conflict):
    code = "acceptance_recorded"
