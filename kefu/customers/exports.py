"""Spreadsheet export of customers, in the columns (and words) the import reads back.

Exports are audited with their filters and row count. Phone numbers, e-mails and channel ids are
masked unless the user may see full contacts; the audit entry says which.
"""

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.db.models import QuerySet
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from kefu.accounts.models import User
from kefu.audit.services import audit_record
from kefu.core.exceptions import ValidationFailed
from kefu.core.permissions import has_perm, require_perm
from kefu.customers.contacts import contact_display
from kefu.customers.filtersets import CustomerFilterSet
from kefu.customers.imports import CHOICE_WORDS, COLUMNS, formula_safe
from kefu.customers.models import ContactPoint, Customer
from kefu.customers.selectors import customer_list_visible_to

CHUNK = 2000
PHASE_EXPORT, PHASE_PACKAGE = "exporting", "packaging"
PROGRESS_EVERY = 500
# Column widths of the sheet, in characters.
_WIDTHS = {"number": 13, "name": 12, "phone": 15, "phone2": 15, "email": 24, "notes": 30}


@dataclass(frozen=True)
class ExportWritten:
    count: int
    filters: dict[str, str]  # the filters that were applied (unknown keys dropped)
    full_contacts: bool


def customer_export_write(
    *,
    actor: User | None,
    queryset_filters: dict[str, Any],
    fmt: str,
    out: IO[bytes],
    progress: Callable[[str, int, int | None], None] | None = None,
) -> ExportWritten:
    """Write the customers the actor sees, filtered like the list page, to `out` as .xlsx or
    .csv; not audited (the caller audits, with what it does with the file).

    `progress(phase, done, total)` hears rows written of the number of customers found.
    """
    customers, filters, full = _export_prepare(actor, queryset_filters)
    report = progress or (lambda phase, done, total: None)
    total = customers.count() if progress else None
    report(PHASE_EXPORT, 0, total)
    count = 0
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=False)
        writer = csv.writer(text)
        writer.writerow([c.header for c in COLUMNS])
        for values in _export_rows(customers, full=full):
            writer.writerow(
                [v.isoformat() if isinstance(v, dt.date) else formula_safe(v or "") for v in values]
            )
            count += 1
            if count % PROGRESS_EVERY == 0:
                report(PHASE_EXPORT, count, max(total or 0, count))
        text.flush()
        text.detach()
    else:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(title="客户")
        _header_write(sheet)
        for values in _export_rows(customers, full=full):
            sheet.append([_xlsx_cell(sheet, v) for v in values])
            count += 1
            if count % PROGRESS_EVERY == 0:
                report(PHASE_EXPORT, count, max(total or 0, count))
        report(PHASE_EXPORT, count, count)
        report(PHASE_PACKAGE, 0, None)
        workbook.save(out)
    report(PHASE_EXPORT if fmt == "csv" else PHASE_PACKAGE, count, count)
    return ExportWritten(count=count, filters=filters, full_contacts=full)


def customer_export_xlsx(
    *, actor: User | None, queryset_filters: dict[str, Any], ip: str | None = None
) -> tuple[bytes, int]:
    """The customers the actor sees, filtered like the list page, as an .xlsx; and how many."""
    return _export_bytes(actor=actor, queryset_filters=queryset_filters, fmt="xlsx", ip=ip)


def customer_export_csv(
    *, actor: User | None, queryset_filters: dict[str, Any], ip: str | None = None
) -> tuple[bytes, int]:
    """The same as customer_export_xlsx as CSV (UTF-8 with BOM, so Excel opens it directly)."""
    return _export_bytes(actor=actor, queryset_filters=queryset_filters, fmt="csv", ip=ip)


def _export_bytes(
    *, actor: User | None, queryset_filters: dict[str, Any], fmt: str, ip: str | None
) -> tuple[bytes, int]:
    out = io.BytesIO()
    written = customer_export_write(
        actor=actor, queryset_filters=queryset_filters, fmt=fmt, out=out
    )
    customer_export_audit(actor, written=written, fmt=fmt, ip=ip)
    return out.getvalue(), written.count


def customer_export_preview(
    *, actor: User | None, queryset_filters: dict[str, Any]
) -> tuple[int, dict[str, str], bool]:
    """How many customers an export with these filters would hold, the filters it would apply,
    and whether it would hold full contacts."""
    customers, filters, full = _export_prepare(actor, queryset_filters)
    return customers.count(), filters, full


def import_template_xlsx() -> bytes:
    """An empty sheet with the import's column headers, to fill in."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title="客户")
    _header_write(sheet)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _header_write(sheet) -> None:
    sheet.freeze_panes = "A2"
    for index, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = _WIDTHS.get(column.key, 11)
    bold = Font(bold=True)
    header = []
    for column in COLUMNS:
        cell = WriteOnlyCell(sheet, value=column.header)
        cell.font = bold
        header.append(cell)
    sheet.append(header)


def _export_prepare(
    actor: User | None, queryset_filters: dict[str, Any]
) -> tuple[QuerySet[Customer], dict[str, str], bool]:
    require_perm(actor, "customers.export_customer")
    filters = {
        k: str(v)
        for k, v in queryset_filters.items()
        if k in CustomerFilterSet.base_filters and v not in (None, "")
    }
    customers = customer_list_visible_to(user=actor).live()
    filterset = CustomerFilterSet(filters, queryset=customers)
    if not filterset.is_valid():
        # An invalid filter would be skipped and export more than the user asked for.
        raise ValidationFailed(filterset.errors)
    full = has_perm(actor, "customers.view_full_contact")
    return filterset.qs, filters, full


def _export_rows(customers: QuerySet[Customer], *, full: bool) -> Iterator[list[Any]]:
    rows = (
        customers.select_related("store")
        .prefetch_related("tags", "contacts")
        .order_by("id")
        .iterator(chunk_size=CHUNK)
    )
    for customer in rows:
        by_kind: dict[str, list[str]] = {}
        for contact in customer.contacts.all():  # primary first
            shown = contact_display(contact.kind, contact.value) if full else contact.masked
            by_kind.setdefault(contact.kind, []).append(shown)
        phones = by_kind.get(ContactPoint.Kind.PHONE, [])
        values = {
            "number": customer.number,
            "name": customer.name,
            "phone": phones[0] if phones else "",
            "phone2": phones[1] if len(phones) > 1 else "",
            "email": _first(by_kind, ContactPoint.Kind.EMAIL),
            "qq": _first(by_kind, ContactPoint.Kind.QQ),
            "wechat_openid": _first(by_kind, ContactPoint.Kind.WECHAT_OPENID),
            "birthday": customer.birthday,
            "store": customer.store.name if customer.store else "",
            "tags": "、".join(t.name for t in customer.tags.all()),
            "membership_card_no": customer.membership_card_no or "",
            "member_since": customer.member_since,
            "notes": customer.notes,
        }
        for key, words in CHOICE_WORDS.items():
            value = getattr(customer, key)
            values[key] = words.get(value, value)
        yield [values[c.key] for c in COLUMNS]


def _first(by_kind: dict[str, list[str]], kind: str) -> str:
    values = by_kind.get(kind)
    return values[0] if values else ""


def _xlsx_cell(sheet, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if value.startswith("="):
        # Text, never a formula the spreadsheet would run.
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def customer_export_audit(
    actor: User | None,
    *,
    written: ExportWritten,
    fmt: str,
    ip: str | None,
    job_id: int | None = None,
) -> None:
    changes: dict[str, Any] = {
        "filters": written.filters,
        "rows": written.count,
        "full_contacts": written.full_contacts,
        "format": fmt,
    }
    if job_id is not None:
        changes["job"] = job_id
    audit_record(
        actor=actor, action="customer.exported", target_type="customer", changes=changes, ip=ip
    )
