"""Spreadsheet import of customers: read .xlsx/.csv, check every row, write the valid ones at once.

`customer_import_rows` is the one bulk path: the import jobs (page and `kefu import`) and the demo
data loader all go through it. It works in three steps so that a large file holds the database's
write lock only briefly (SQLite serialises writers):

1. Check: every row is cleaned in memory, then all phones, e-mails, cards and numbers of the file
   are looked up with a few IN queries. Nothing is written.
2. Prepare (commit only, and only if some row is valid): the customers, contacts and search text
   of the valid rows are built in memory, still outside any transaction.
3. Save: one transaction reserves the numbers and inserts the customers, contacts, tags, one
   timeline event per customer and one audit entry, in batches through executemany (see
   _insert_values). Any failure rolls all of it back.

Each step reports rows done of total through a `progress` callback (the job's progress bar).
Contacts and search_text are built with the services' own helpers, so imported customers look
exactly like customers created one by one.
"""

import codecs
import csv
import datetime as dt
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from itertools import islice
from pathlib import Path
from typing import IO, Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kefu.accounts.models import Store, User
from kefu.audit.services import audit_record
from kefu.core.exceptions import ValidationFailed
from kefu.core.permissions import has_perm, require_perm
from kefu.customers import contacts as contact_rules
from kefu.customers.exceptions import ImportConflict, ImportFileInvalid
from kefu.customers.models import ContactPoint, Customer, CustomerEvent, Tag
from kefu.customers.search import build_search_text
from kefu.customers.services import (
    _contact_rows,
    _tags_resolve,
    customer_numbers_reserve,
    customer_search_tokens,
    profile_clean,
)

# The sheet row number of a row dict (header = row 1). Rows without it are numbered from 2.
ROW_KEY = "_row"
# A bigger file is refused before it fills the memory of the web process.
MAX_ROWS = 200_000
# Rows per INSERT batch and values per IN query (SQLite allows 999 parameters per query).
WRITE_BATCH = 2000
LOOKUP_CHUNK = 500
# How many rows at the top of a sheet may come before the header (a title, a note...).
HEADER_SEARCH_ROWS = 10
# The steps reported to `progress`, and how often the checking step reports.
PHASE_CHECK, PHASE_PREPARE, PHASE_SAVE = "checking", "preparing", "saving"
PROGRESS_EVERY = 500

# progress(phase, rows done, rows in the phase or None when not known yet)
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # what the export writes and the import template shows
    label: Any  # translatable name for messages
    aliases: tuple[str, ...] = ()


# In the order of the export; the first header is the one written out.
COLUMNS: tuple[Column, ...] = (
    Column("number", "客户编号", gettext_lazy("Customer number"), ("编号", "客户号", "number")),
    Column("name", "姓名", gettext_lazy("Name"), ("名称", "客户姓名", "客户名称", "name")),
    Column(
        "phone",
        "手机",
        gettext_lazy("Mobile phone"),
        ("手机号", "手机号码", "电话", "电话号码", "联系电话", "移动电话", "phone", "mobile"),
    ),
    Column(
        "phone2",
        "其他电话",
        gettext_lazy("Other phone"),
        ("其它电话", "备用电话", "座机", "固定电话", "phone2", "otherphone"),
    ),
    Column("email", "邮箱", gettext_lazy("E-mail"), ("电子邮箱", "电子邮件", "email", "e-mail")),
    Column("qq", "QQ", gettext_lazy("QQ"), ("qq号", "qq号码")),
    Column("wechat_openid", "微信openid", gettext_lazy("WeChat openid"), ("openid",)),
    Column("gender", "性别", gettext_lazy("Gender"), ("gender", "sex")),
    Column("birthday", "生日", gettext_lazy("Birthday"), ("出生日期", "birthday", "dateofbirth")),
    Column("level", "等级", gettext_lazy("Level"), ("客户等级", "级别", "level")),
    Column("status", "状态", gettext_lazy("Lifecycle status"), ("客户状态", "生命周期", "status")),
    Column("store", "门店", gettext_lazy("Store"), ("所属门店", "归属门店", "store")),
    Column("tags", "标签", gettext_lazy("Tags"), ("客户标签", "tags", "tag")),
    Column("source", "来源", gettext_lazy("Source channel"), ("来源渠道", "渠道", "source")),
    Column(
        "membership_card_no",
        "会员卡号",
        gettext_lazy("Membership card number"),
        ("卡号", "会员卡", "membership_card_no", "card"),
    ),
    Column("member_since", "入会日期", gettext_lazy("Member since"), ("入会时间", "member_since")),
    Column("temperament", "性格", gettext_lazy("Temperament"), ("性格特点", "temperament")),
    Column("notes", "备注", gettext_lazy("Notes"), ("说明", "notes", "note")),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
KEYS = tuple(COLUMN_BY_KEY)
# Primary contacts first: inserted in this order they come back in the order of
# ContactPoint.Meta.ordering, so search_text matches what customer_reindex would write.
CONTACT_COLUMNS = {
    "phone": ContactPoint.Kind.PHONE,
    "email": ContactPoint.Kind.EMAIL,
    "qq": ContactPoint.Kind.QQ,
    "wechat_openid": ContactPoint.Kind.WECHAT_OPENID,
    "phone2": ContactPoint.Kind.PHONE,
}
_FIELD_ORDER = {key: i for i, key in enumerate(KEYS)}

# The Chinese word the export writes for each choice; the import also takes the stored value,
# the English label and the extra words below.
CHOICE_WORDS: dict[str, dict[str, str]] = {
    "gender": {"male": "男", "female": "女"},
    "level": {"normal": "普通", "vip": "VIP", "key_account": "大客户"},
    "status": {"prospect": "潜在", "customer": "成交", "member": "会员", "closed": "销户"},
    "source": {
        "phone": "电话",
        "web_chat": "在线客服",
        "wechat": "微信",
        "qq": "QQ",
        "email": "邮件",
        "store": "门店",
        "walk_in": "到店",
        "platform": "线上平台",
        "import": "导入",
        "other": "其他",
    },
    "temperament": {
        "irate": "暴躁型",
        "assertive": "强势型",
        "composed": "沉稳型",
        "confused": "迷茫型",
    },
}
_CHOICE_EXTRA_WORDS: dict[str, dict[str, str]] = {
    "gender": {"男性": "male", "m": "male", "女性": "female", "f": "female", "未知": ""},
    "level": {"普通客户": "normal", "vip客户": "vip", "重要客户": "key_account"},
    "status": {
        "潜在客户": "prospect",
        "成交客户": "customer",
        "已成交": "customer",
        "会员客户": "member",
        "已销户": "closed",
    },
    "source": {"网页": "web_chat", "在线": "web_chat", "邮箱": "email", "平台": "platform"},
    "temperament": {
        "暴躁": "irate",
        "强势": "assertive",
        "沉稳": "composed",
        "平和": "composed",
        "冷静": "composed",
        "迷茫": "confused",
        "困惑": "confused",
        "易怒": "irate",
        "未记录": "",
    },
}
_CHOICES = {
    "gender": Customer.Gender,
    "level": Customer.Level,
    "status": Customer.Status,
    "source": Customer.Source,
    "temperament": Customer.Temperament,
}
# The value of an empty cell (plain str: the rows go to the database driver as they are).
_DEFAULTS = {
    "gender": Customer.Gender.UNKNOWN.value,
    "level": Customer.Level.NORMAL.value,
    "status": Customer.Status.PROSPECT.value,
    "source": Customer.Source.IMPORT.value,
    "temperament": Customer.Temperament.UNKNOWN.value,
}
_TAG_SPLIT_RE = re.compile(r"[,，、]")
_DATE_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_HEADER_NOISE_RE = re.compile(r"[\s*＊_:：]|[(（][^)）]*[)）]")


def _fold(text: str) -> str:
    """Compare headers and choice words loosely: case, spaces, '*' and '(...)' do not matter."""
    return _HEADER_NOISE_RE.sub("", text).casefold().replace("-", "")


@cache
def _header_keys() -> dict[str, str]:
    keys = {}
    for column in COLUMNS:
        for alias in (column.key, column.header, *column.aliases):
            keys[_fold(alias)] = column.key
    return keys


@cache
def _choice_lookup(field_name: str) -> dict[str, str]:
    lookup: dict[str, str] = {}
    # The labels the UI shows, in English and in Chinese, are read back too.
    for language in ("en", "zh-hans"):
        with translation.override(language):
            for value, label in _CHOICES[field_name].choices:
                lookup[_fold(str(label))] = value
                lookup[_fold(value)] = value
    for value, word in CHOICE_WORDS[field_name].items():
        lookup[_fold(word)] = value
    for word, value in _CHOICE_EXTRA_WORDS[field_name].items():
        lookup[_fold(word)] = value
    lookup.pop("", None)
    return lookup


# --- Reading a file -----------------------------------------------------------------------------


@dataclass
class Spreadsheet:
    """The data rows of a sheet (see read_spreadsheet) and how many there are likely to be."""

    rows: Iterator[dict[str, Any]]
    # Rows after the header, blank ones included; None when the file does not say.
    estimated_rows: int | None


def open_spreadsheet(fileobj: IO[bytes], filename: str) -> Spreadsheet:
    """Open an .xlsx or .csv file: its rows (as read_spreadsheet gives them) and an estimate of
    their number for a progress bar. Raises ImportFileInvalid at once when the file cannot be
    read or has no header."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".xlsx":
        table, last_row = _xlsx_table(fileobj)
    elif suffix == ".csv":
        table, last_row = _csv_table(fileobj)
    elif suffix in (".xls", ".et"):
        raise ImportFileInvalid(
            _("Old .xls files cannot be read; save the sheet as .xlsx or .csv and upload that.")
        )
    else:
        raise ImportFileInvalid(_("Upload an .xlsx or .csv file."))
    keys, header_row = _header_find(table)
    estimate = None
    if last_row is not None and header_row < last_row <= MAX_ROWS + header_row:
        estimate = last_row - header_row
    return Spreadsheet(_data_rows(table, keys), estimate)


def read_spreadsheet(fileobj: IO[bytes], filename: str) -> Iterator[dict[str, Any]]:
    """The data rows of an .xlsx or .csv file as dicts keyed like `COLUMNS`, plus `ROW_KEY`.

    The header (the first row naming a 姓名/name column) may use Chinese or English names.
    Columns it does not know stay in the dicts under their own header, so the import can list
    them as not imported. Empty rows are skipped. Raises ImportFileInvalid at once when the file
    cannot be read or has no header.
    """
    return open_spreadsheet(fileobj, filename).rows


def import_rows_save(rows: Iterable[dict[str, Any]], out: IO[str]) -> Iterator[dict[str, Any]]:
    """Pass rows through while writing them to `out` as JSON lines (dates as YYYY-MM-DD).

    The import page checks an upload this way and later imports the saved rows: parsing a big
    .xlsx is the slowest step of an import (about 18 s per 100,000 rows), so it is done once.
    """
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, default=dt.date.isoformat) + "\n")
        yield row


def import_rows_load(saved: IO[str]) -> Iterator[dict[str, Any]]:
    """The rows written by import_rows_save, for customer_import_rows."""
    for line in saved:
        yield json.loads(line)


def _xlsx_table(fileobj: IO[bytes]) -> tuple[Iterator[tuple[int, Sequence[Any]]], int | None]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(fileobj, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError):
        raise ImportFileInvalid(
            _("This is not an .xlsx file that can be read; save it again as .xlsx or .csv.")
        ) from None
    if not workbook.worksheets:
        workbook.close()
        raise ImportFileInvalid(_("The file has no sheet."))
    # The sheet the user last looked at, unless that is a chart.
    active = workbook.active
    sheet = active if active in workbook.worksheets else workbook.worksheets[0]

    def rows() -> Iterator[tuple[int, Sequence[Any]]]:
        try:
            yield from enumerate(sheet.iter_rows(values_only=True), start=1)
        finally:
            workbook.close()

    # The sheet's own <dimension> (Excel, WPS and openpyxl write it); absent in some files.
    try:
        last_row = sheet.max_row
    except (ValueError, TypeError):
        last_row = None
    return rows(), last_row if isinstance(last_row, int) else None


def _csv_table(fileobj: IO[bytes]) -> tuple[Iterator[tuple[int, Sequence[Any]]], int | None]:
    raw = fileobj.read()
    text = raw if isinstance(raw, str) else _decode(raw)
    first_line = text.split("\n", 1)[0]
    delimiter = max([",", "\t", ";"], key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, Sequence[Any]]]:
        try:
            yield from enumerate(reader, start=1)
        except csv.Error as exc:
            raise ImportFileInvalid(
                _("Line %(line)s of the CSV file cannot be read: %(error)s")
                % {"line": reader.line_num, "error": exc}
            ) from None

    # Lines, not rows (a quoted cell may hold a line break): close enough for a progress bar.
    return rows(), text.count("\n") + (0 if text.endswith("\n") else 1)


def _decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030 (what Excel and WPS write in China)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ["utf-16"]
    else:
        encodings = ["utf-8-sig", "gb18030"]
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileInvalid(
        _("The text encoding of the file is not known; save it as CSV UTF-8 and upload again.")
    )


def _header_find(table: Iterator[tuple[int, Sequence[Any]]]) -> tuple[list[str | None], int]:
    """Consume rows up to the header; return the key of each column (None: no header) and the
    header's row number."""
    seen = 0
    for row_no, cells in table:
        texts = [_text(c) for c in cells]
        if not any(texts):
            continue
        keys = _header_keys()
        mapped = [keys.get(_fold(t)) if t else None for t in texts]
        if "name" in mapped:
            used: set[str] = set()
            columns: list[str | None] = []
            for index, (text, key) in enumerate(zip(texts, mapped, strict=True)):
                if key == "phone" and "phone" in used and "phone2" not in mapped:
                    key = "phone2"  # 手机 and 电话 side by side: the second is the other phone
                if key is not None and key not in used:
                    used.add(key)
                    columns.append(key)
                elif text:
                    # Unknown (or a second column for the same field): kept under its header.
                    columns.append(text if key is None else f"{text} ({_column_letter(index)})")
                else:
                    columns.append(None)
            return columns, row_no
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            break
    if seen == 0:
        raise ImportFileInvalid(_("The file is empty."))
    raise ImportFileInvalid(
        _("No header row with a name column (姓名 or name) was found at the top of the sheet.")
    )


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _data_rows(
    table: Iterator[tuple[int, Sequence[Any]]], keys: list[str | None]
) -> Iterator[dict[str, Any]]:
    count = 0
    for row_no, cells in table:
        row: dict[str, Any] = {}
        filled = False
        for key, cell in zip(keys, cells, strict=False):
            if key is None:
                continue
            value = _cell(cell)
            if value != "":
                filled = True
            row[key] = value
        if not filled:
            continue
        count += 1
        if count > MAX_ROWS:
            raise ImportFileInvalid(
                _("The file has more than %(max)s rows; split it into smaller files.")
                % {"max": f"{MAX_ROWS:,}"}
            )
        row[ROW_KEY] = row_no
        yield row


def _cell(value: Any) -> Any:
    """A cell as text, or as a date when the sheet holds a date."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, float) and value.is_integer():
        # Phone and card numbers typed into a number cell: 13812345678.0 → "13812345678".
        return str(int(value))
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        # A leading apostrophe forces text in Excel and guards formulas in exported CSV.
        if text[:1] == "'" and text[1:2] and (text[1].isdigit() or text[1] in "=+-@"):
            text = text[1:]
        return text
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# --- Checking and writing rows ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One reason a row was not imported; `row` is the sheet row (the header is row 1)."""

    row: int
    field: str
    message: str
    value: str = ""

    @property
    def label(self) -> str:
        column = COLUMN_BY_KEY.get(self.field)
        return str(column.label) if column else self.field


@dataclass
class ImportResult:
    """What an import found (and, after a commit, wrote)."""

    filename: str = ""
    total: int = 0
    valid: int = 0
    created: int = 0
    committed: bool = False
    errors: list[RowError] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    first_number: str = ""
    last_number: str = ""

    @property
    def invalid(self) -> int:
        """Rows with at least one error (and so not imported)."""
        return self.total - self.valid


@dataclass(slots=True)
class _Row:
    """A checked row, ready to become a Customer once it has a number."""

    row: int
    fields: dict[str, Any]
    contacts: list[dict[str, Any]]
    tags: list[str]
    errors: list[RowError] = field(default_factory=list)


@dataclass
class _Checker:
    """Cleans rows one by one and remembers the values that must be unique across the file."""

    today: dt.date
    stores: dict[str, Store]  # by code and by name, case-folded
    # Staff who see only their own store import into it (as in customer_create).
    restrict_to_store: bool
    own_store: Store | None
    # (kind, value), card or number → (index of the first row with it, column, raw value)
    contacts_seen: dict[tuple[str, str], tuple[int, str, str]] = field(default_factory=dict)
    cards_seen: dict[str, tuple[int, str]] = field(default_factory=dict)
    numbers_seen: dict[str, tuple[int, str]] = field(default_factory=dict)
    rows: list[_Row] = field(default_factory=list)

    def check(self, row_no: int, row: dict[str, Any]) -> None:
        checked = _Row(row=row_no, fields={}, contacts=[], tags=[])
        index = len(self.rows)
        self.rows.append(checked)

        def error(key: str, message: str, value: Any = None) -> None:
            raw = row.get(key) if value is None else value
            checked.errors.append(RowError(row_no, key, str(message), _text(raw)))

        data = self._profile_data(row, error)
        failed = {e.field for e in checked.errors}
        # Choice values come out of _choice_lookup valid; profile_clean checks the rest (its
        # choice check rebuilds the lists of values on every call, a third of the checking time).
        checked.fields = {k: v for k, v in data.items() if k in _CHOICES}
        try:
            checked.fields.update(
                profile_clean(
                    {k: v for k, v in data.items() if k not in failed and k not in _CHOICES},
                    today=self.today,
                )
            )
        except ValidationFailed as exc:
            for key, messages in exc.errors.items():
                for message in messages:
                    error(key, message)
        for tag in _TAG_SPLIT_RE.split(_text(row.get("tags"))):
            tag = tag.strip()
            if len(tag) > 50:
                error("tags", _("A tag has at most 50 characters."), tag)
            elif tag and tag not in checked.tags:
                checked.tags.append(tag)
        card = _text(row.get("membership_card_no"))
        if len(card) > 40:
            error("membership_card_no", _("A card number has at most 40 characters."))
        elif card and self._first(self.cards_seen, card, (index, card)) is not None:
            error("membership_card_no", self._duplicate_of(self.cards_seen[card][0]))
        checked.fields["membership_card_no"] = card or None
        number = _text(row.get("number")).upper()
        if number and self._first(self.numbers_seen, number, (index, number)) is not None:
            error("number", self._duplicate_of(self.numbers_seen[number][0]))
        for key, kind in CONTACT_COLUMNS.items():
            raw = _text(row.get(key))
            if not raw:
                continue
            if "***" in raw:
                # A masked value from an export (138****5678, z***@qq.com) is not a contact.
                error(key, _("“%(value)s” is masked; import the full value.") % {"value": raw})
                continue
            try:
                value = contact_rules.contact_normalize(kind, raw)
            except contact_rules.ContactInvalid as exc:
                error(key, str(exc), raw)
                continue
            first = self._first(self.contacts_seen, (kind, value), (index, key, raw))
            if first == index:
                continue  # the same number twice in one row counts once
            if first is not None:
                error(key, self._duplicate_of(first), raw)
                continue
            checked.contacts.append(
                {"kind": kind, "value": value, "label": "", "is_primary": key != "phone2"}
            )

    def _profile_data(
        self, row: dict[str, Any], error: Callable[[str, str], None]
    ) -> dict[str, Any]:
        """The row's profile fields as profile_clean takes them; unreadable ones are left out."""
        data: dict[str, Any] = {"name": _text(row.get("name")), "notes": _text(row.get("notes"))}
        for key, default in _DEFAULTS.items():
            text = _text(row.get(key))
            value = _choice_lookup(key).get(_fold(text)) if text else default
            if value is None:
                words = "、".join(CHOICE_WORDS[key].values())
                error(
                    key,
                    _("“%(value)s” is not one of: %(choices)s.")
                    % {"value": text, "choices": words},
                )
            else:
                data[key] = value
        for key in ("birthday", "member_since"):
            try:
                data[key] = _date(row.get(key))
            except ValueError:
                error(
                    key,
                    _("“%(value)s” is not a date; write it as YYYY-MM-DD.")
                    % {"value": _text(row.get(key))},
                )
        store_text = _text(row.get("store"))
        store = self.stores.get(store_text.casefold()) if store_text else None
        if store_text and store is None:
            error("store", _("Unknown store “%(value)s”.") % {"value": store_text})
            return data
        if self.restrict_to_store:
            if store is not None and store != self.own_store:
                error("store", _("You can only add customers to your own store."))
                return data
            store = self.own_store
        data["store"] = store
        if data.get("status") == Customer.Status.MEMBER and "member_since" in data:
            data["member_since"] = data["member_since"] or self.today
        return data

    @staticmethod
    def _first(seen: dict, key: Any, entry: tuple) -> int | None:
        """Remember where a unique value first appears; return that row's index if it is not this one."""
        first = seen.setdefault(key, entry)
        return first[0] if first is not entry else None

    def _duplicate_of(self, first_index: int) -> str:
        return _("Duplicate of row %(row)s in this file.") % {"row": self.rows[first_index].row}

    def check_existing(self) -> None:
        """Flag values the archive already holds, pointing to the customer that has them."""
        taken = _("Already belongs to customer %(number)s (%(name)s).")
        by_kind: dict[str, list[str]] = {}
        for kind, value in self.contacts_seen:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in by_kind.items():
            for chunk in batched(values, LOOKUP_CHUNK):
                found = ContactPoint.objects.filter(kind=kind, value__in=chunk).values_list(
                    "value", "customer__number", "customer__name"
                )
                for value, number, name in found:
                    index, key, raw = self.contacts_seen[(kind, value)]
                    self._flag(index, key, taken % {"number": number, "name": name}, raw)
        for chunk in batched(list(self.cards_seen), LOOKUP_CHUNK):
            found = Customer.objects.filter(membership_card_no__in=chunk).values_list(
                "membership_card_no", "number", "name"
            )
            for card, number, name in found:
                index, raw = self.cards_seen[card]
                self._flag(
                    index, "membership_card_no", taken % {"number": number, "name": name}, raw
                )
        for chunk in batched(list(self.numbers_seen), LOOKUP_CHUNK):
            for number, name in Customer.objects.filter(number__in=chunk).values_list(
                "number", "name"
            ):
                index, raw = self.numbers_seen[number]
                message = _("Customer %(number)s (%(name)s) is already in the archive.")
                self._flag(index, "number", message % {"number": number, "name": name}, raw)

    def _flag(self, index: int, key: str, message: str, raw: str) -> None:
        row = self.rows[index]
        row.errors.append(RowError(row.row, key, message, raw))


def batched(items: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    """itertools.batched of Python 3.12."""
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def _date(value: Any) -> dt.date | None:
    """A date cell, YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYY年MM月DD日 or YYYYMMDD; raises ValueError."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _text(value)
    if not text:
        return None
    match = _DATE_RE.match(text) or _COMPACT_DATE_RE.match(text)
    if match is None:
        raise ValueError(text)
    year, month, day = (int(part) for part in match.groups())
    return dt.date(year, month, day)


def customer_import_rows(
    *,
    actor: User | None,
    rows: Iterable[dict[str, Any]],
    commit: bool,
    now: dt.datetime | None = None,
    filename: str = "",
    ip: str | None = None,
    progress: Progress | None = None,
    expected_rows: int | None = None,
    before_commit: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Check import rows and, with `commit`, create a customer for every valid one.

    Rows are dicts keyed like `COLUMNS` (values as text or dates), with `ROW_KEY` for the sheet
    row. A row with any error is left out and listed with its reasons; the valid rows are
    written together in one transaction, or none of them is. Without `commit` nothing is written.

    `progress(phase, done, total)` hears how far each step is (`expected_rows`: how many rows to
    expect while checking). `before_commit(result)` runs inside the write's transaction after
    everything is written: what it writes commits with the import, and if it raises, nothing
    of the import stays.
    """
    require_perm(actor, "customers.import_customer")
    return _import(
        actor=actor,
        rows=rows,
        commit=commit,
        now=now,
        filename=filename,
        ip=ip,
        progress=progress or _no_progress,
        expected_rows=expected_rows,
        before_commit=before_commit,
    )


def _no_progress(phase: str, done: int, total: int | None) -> None:
    return None


def _import(
    *,
    actor: User | None,
    rows: Iterable[dict[str, Any]],
    commit: bool,
    now: dt.datetime | None,
    filename: str,
    ip: str | None,
    progress: Progress,
    expected_rows: int | None,
    before_commit: Callable[[ImportResult], None] | None,
) -> ImportResult:
    now = now or timezone.now()
    stores: dict[str, Store] = {}
    for store in Store.objects.all():
        stores[store.name.casefold()] = store
        stores[store.code.casefold()] = store
    checker = _Checker(
        today=timezone.localdate(now),
        stores=stores,
        restrict_to_store=not has_perm(actor, "customers.view_all_customers"),
        own_store=getattr(actor, "store", None),
    )
    result = ImportResult(filename=filename)
    unknown: dict[str, None] = {}
    progress(PHASE_CHECK, 0, expected_rows)
    for position, row in enumerate(rows, start=2):
        for key in row:
            if key not in COLUMN_BY_KEY and key != ROW_KEY and key not in unknown:
                unknown[key] = None
        checker.check(row.get(ROW_KEY) or position, row)
        if position % PROGRESS_EVERY == 0:
            done = position - 1
            progress(PHASE_CHECK, done, max(expected_rows or 0, done) or None)
    checker.check_existing()
    result.unknown_columns = list(unknown)
    result.total = len(checker.rows)
    progress(PHASE_CHECK, result.total, result.total)
    valid = [r for r in checker.rows if not r.errors]
    result.valid = len(valid)
    result.errors = sorted(
        (e for r in checker.rows for e in r.errors),
        key=lambda e: (e.row, _FIELD_ORDER.get(e.field, len(_FIELD_ORDER))),
    )
    if commit and valid:
        prepared = _prepare(actor=actor, rows=valid, result=result, progress=progress)
        del checker, valid
        # Said before the transaction begins, where others can still see it.
        progress(PHASE_SAVE, 0, len(prepared))
        try:
            _write(
                actor=actor,
                rows=prepared,
                result=result,
                ip=ip,
                progress=progress,
                before_commit=before_commit,
            )
        except IntegrityError:
            raise ImportConflict(
                _(
                    "Someone saved one of these phone numbers, e-mails or cards while the import "
                    "was running. Nothing was imported; run the import again."
                )
            ) from None
    return result


# The columns inserted, in order (as _insert writes them), and where the values that are only
# known inside the write's transaction go.
_CUSTOMER_COLUMNS = [f.attname for f in Customer._meta.concrete_fields if not f.primary_key]
_CONTACT_COLUMNS = [f.attname for f in ContactPoint._meta.concrete_fields if not f.primary_key]
_AT = {name: _CUSTOMER_COLUMNS.index(name) for name in ("number", "search_text")}
_AT_STAMPS = [_CUSTOMER_COLUMNS.index(n) for n in ("created_at", "updated_at")]
_AT_CONTACT = {name: _CONTACT_COLUMNS.index(name) for name in ("customer_id", "created_at")}


@dataclass(slots=True)
class _Prepared:
    """A valid row as the values of its customer row (number still to come) and contact rows:
    plain lists, far smaller than model instances for 100,000 customers."""

    customer: list[Any]
    contacts: list[list[Any]]
    tags: list[str]
    search_rest: str  # the search text without the customer number
    event_data: Any  # the timeline event's data, adapted for the database


def _prepare(
    *, actor: User | None, rows: list[_Row], result: ImportResult, progress: Progress
) -> list[_Prepared]:
    """Build everything of the new customers that does not depend on their numbers, outside
    the write's transaction: this is most of an import's work (pinyin, phone parsing, model
    instances), and the write lock is then held only for the inserts."""
    actor_id = getattr(actor, "pk", None)
    event_file = result.filename[:200]
    adapt_data = partial(
        CustomerEvent._meta.get_field("data").get_db_prep_save, connection=connection
    )
    prepared: list[_Prepared] = []
    total = len(rows)
    progress(PHASE_PREPARE, 0, total)
    for done, row in enumerate(rows, start=1):
        customer = Customer(**row.fields, number="", created_by_id=actor_id)
        contacts = _contact_rows(customer, row.contacts)
        tokens = customer_search_tokens(customer, contacts, row.tags)
        prepared.append(
            _Prepared(
                customer=[getattr(customer, name) for name in _CUSTOMER_COLUMNS],
                contacts=[[getattr(c, name) for name in _CONTACT_COLUMNS] for c in contacts],
                tags=row.tags,
                search_rest=build_search_text(tokens),
                event_data=adapt_data({"file": event_file, "row": row.row}),
            )
        )
        if done % PROGRESS_EVERY == 0:
            progress(PHASE_PREPARE, done, total)
    progress(PHASE_PREPARE, total, total)
    return prepared


def _search_text_with_number(rest: str, number: str) -> str:
    """What customer_search_text gives, from the text of the other tokens: the number first."""
    token = number.strip().lower().replace(" ", "")
    if not rest.strip():
        return f" {token} "
    return " " + token + rest.replace(f" {token} ", " ", 1)


@transaction.atomic
def _write(
    *,
    actor: User | None,
    rows: list[_Prepared],
    result: ImportResult,
    ip: str | None,
    progress: Progress,
    before_commit: Callable[[ImportResult], None] | None,
) -> None:
    total = len(rows)
    progress(PHASE_SAVE, 0, total)
    numbers = customer_numbers_reserve(total)
    tag_names = list(dict.fromkeys(name for r in rows for name in r.tags))
    tags: dict[str, Tag] = {}
    for chunk in batched(tag_names, LOOKUP_CHUNK):
        tags.update((t.name, t) for t in _tags_resolve(chunk))
    written_at = timezone.now()
    actor_id = getattr(actor, "pk", None)
    done = 0
    for batch in batched(zip(rows, numbers, strict=True), WRITE_BATCH):
        customer_rows: list[list[Any]] = []
        for row, number in batch:
            values = row.customer
            values[_AT["number"]] = number
            values[_AT["search_text"]] = _search_text_with_number(row.search_rest, number)
            for index in _AT_STAMPS:
                values[index] = written_at
            customer_rows.append(values)
        _insert_values(Customer, _CUSTOMER_COLUMNS, customer_rows)
        ids = _customer_ids([number for _row, number in batch])
        customer_ids = [ids[number] for _row, number in batch]
        contact_rows: list[list[Any]] = []
        for (row, _number), customer_id in zip(batch, customer_ids, strict=True):
            for values in row.contacts:
                values[_AT_CONTACT["customer_id"]] = customer_id
                values[_AT_CONTACT["created_at"]] = written_at
                contact_rows.append(values)
        _insert_values(ContactPoint, _CONTACT_COLUMNS, contact_rows)
        _insert_values(
            Customer.tags.through,
            ["customer_id", "tag_id"],
            [
                (customer_id, tags[name].pk)
                for (row, _number), customer_id in zip(batch, customer_ids, strict=True)
                for name in row.tags
            ],
        )
        _insert_values(
            CustomerEvent,
            ["customer_id", "kind", "actor_id", "data", "created_at"],
            [
                (
                    customer_id,
                    CustomerEvent.Kind.IMPORTED.value,
                    actor_id,
                    row.event_data,
                    written_at,
                )
                for (row, _number), customer_id in zip(batch, customer_ids, strict=True)
            ],
            adapted={"data"},
        )
        done += len(batch)
        progress(PHASE_SAVE, done, total)
    result.created = total
    result.committed = True
    result.first_number, result.last_number = numbers[0], numbers[-1]
    audit_record(
        actor=actor,
        action="customer.imported",
        target_type="customer",
        changes={
            "file": result.filename,
            "rows": result.total,
            "created": result.created,
            "rejected": result.invalid,
            "numbers": [result.first_number, result.last_number],
            "unknown_columns": result.unknown_columns,
        },
        ip=ip,
    )
    if before_commit is not None:
        before_commit(result)


def _insert_values(
    model: type[models.Model],
    names: list[str],
    rows: list[tuple],
    *,
    adapted: frozenset[str] | set[str] = frozenset(),
) -> None:
    """One INSERT run through executemany.

    This is bulk_create without its per-value field machinery, which costs about 150 µs a
    customer row (15 s for 100,000 customers, 40 s with their contacts, tags and events);
    executemany takes a tenth of that. Values are adapted for the database as bulk_create would,
    except in the columns named in `adapted` (adapted by the caller already).
    """
    if not rows:
        return
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    fields = [by_attname[n] for n in names]
    ops = connection.ops
    adapters: list[Any] = []
    for f in fields:
        kind = f.get_internal_type()
        if f.attname in adapted:
            adapters.append(None)
            continue
        # Timestamps are the same on every row, dates repeat: adapt each value once.
        if kind == "DateTimeField":
            adapters.append(cache(ops.adapt_datetimefield_value))
        elif kind == "DateField":
            adapters.append(cache(ops.adapt_datefield_value))
        elif kind == "JSONField":
            adapters.append(partial(f.get_db_prep_save, connection=connection))
        else:
            adapters.append(None)
    if any(adapters):
        converted = [i for i, a in enumerate(adapters) if a is not None]
        adapted = []
        for row in rows:
            values = list(row)
            for i in converted:
                if values[i] is not None:
                    values[i] = adapters[i](values[i])
            adapted.append(values)
        rows = adapted
    qn = ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        qn(model._meta.db_table),
        ", ".join(qn(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _customer_ids(numbers: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for chunk in batched(numbers, LOOKUP_CHUNK):
        ids.update(Customer.objects.filter(number__in=chunk).values_list("number", "id"))
    return ids


def import_error_report_csv(result: ImportResult) -> bytes:
    """Every row error as a CSV Excel opens directly (UTF-8 with BOM)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("Row"), _("Column"), _("Value"), _("Problem")])
    for e in result.errors:
        writer.writerow([e.row, e.label, formula_safe(e.value), e.message])
    return out.getvalue().encode("utf-8-sig")


def formula_safe(text: str) -> str:
    """Keep spreadsheet programs from running a value as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
