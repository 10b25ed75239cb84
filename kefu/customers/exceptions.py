from django.utils.translation import gettext_lazy as _

from kefu.core.exceptions import Conflict, DomainError, NotFound


class CustomerNotFound(NotFound):
    code = "customer_not_found"

    def __init__(self, customer_id):
        super().__init__(_("Customer %(id)s not found.") % {"id": customer_id})


class ContactTaken(Conflict):
    """A normalized contact already belongs to another customer."""

    code = "contact_taken"

    def __init__(self, *, field: str, existing, display: str):
        message = _("%(contact)s already belongs to customer %(number)s (%(name)s).") % {
            "contact": display,
            "number": existing.number,
            "name": existing.name,
        }
        super().__init__(
            message,
            errors={field: [str(message)]},
            existing={"id": existing.pk, "number": existing.number, "name": existing.name},
        )


class LifecycleChangeNotAllowed(DomainError):
    code = "lifecycle_change_not_allowed"
    status = 409


class CustomerMergeNotAllowed(DomainError):
    code = "merge_not_allowed"
    status = 409


class ImportFileInvalid(DomainError):
    """The file as a whole cannot be read (format, encoding, no header); no row was checked."""

    code = "import_file_invalid"
    status = 400


class ImportConflict(Conflict):
    """Another change took a phone, e-mail or card of the file while it was being written."""

    code = "import_conflict"
