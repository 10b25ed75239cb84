import csv
import datetime as dt
import importlib
import io
import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from openpyxl import Workbook, load_workbook

from kefu.accounts.models import User
from kefu.audit.models import AuditEntry
from kefu.core.exceptions import Forbidden
from kefu.core.models import Sequence
from kefu.customers import imports
from kefu.customers.exceptions import ImportConflict, ImportFileInvalid
from kefu.customers.imports import (
    customer_import_rows,
    read_spreadsheet,
)
from kefu.customers.models import ContactPoint, Customer, CustomerEvent, Tag
from kefu.customers.selectors import customer_search
from kefu.customers.services import customer_search_text
from kefu.customers.tests.factories import make_customer
from kefu.jobs.models import Job
from kefu.jobs.runs import ProgressReport

pytestmark = pytest.mark.django_db

# The module of `kefu import` (its name is a keyword).
ProgressLine = importlib.import_module("kefu.customers.management.commands.import").ProgressLine
HEADER = ["姓名", "手机", "性别", "生日", "等级", "状态", "门店", "标签"]
ZHANG = ["张三", "138 1234 5678", "男", "1980-01-02", "VIP", "会员", "人民路店", "慢病、母婴"]


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in their English source text."""
    with translation.override("en"):
        yield


def xlsx_upload(rows: list[list], name: str = "customers.xlsx") -> SimpleUploadedFile:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return SimpleUploadedFile(name, out.getvalue())


def csv_upload(
    rows: list[list], name: str = "customers.csv", encoding: str = "utf-8-sig"
) -> SimpleUploadedFile:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return SimpleUploadedFile(name, out.getvalue().encode(encoding))


def run_import(upload: SimpleUploadedFile, *, actor=None, commit: bool = False):
    upload.seek(0)
    return customer_import_rows(
        actor=actor, rows=read_spreadsheet(upload, upload.name), commit=commit, filename=upload.name
    )


def errors_of(result) -> list[tuple[int, str]]:
    return [(e.row, e.field) for e in result.errors]


def nothing_written() -> bool:
    return not (
        Customer.objects.exists()
        or ContactPoint.objects.exists()
        or CustomerEvent.objects.exists()
        or Tag.objects.exists()
        or AuditEntry.objects.filter(action="customer.imported").exists()
    )


# --- Reading files ------------------------------------------------------------------------------


def test_xlsx_headers_in_chinese_or_english_map_to_keys():
    """Header names in either language map to the same keys; cells keep dates, number cells read
    as text, blank rows are skipped and rows keep their sheet numbers."""
    upload = xlsx_upload(
        [
            ["Name", "手机号", "E-mail", "出生日期", "会员卡号", "地址"],
            ["张三", 13812345678, "ZS@Example.com", dt.date(1980, 1, 2), 88001.0, "杭州"],
            [None, None, None, None, None, None],
            ["李四", "139 0000 1111", None, "1990/1/2", None, None],
        ]
    )

    rows = list(read_spreadsheet(upload, upload.name))

    assert rows == [
        {
            "name": "张三",
            "phone": "13812345678",
            "email": "ZS@Example.com",
            "birthday": dt.date(1980, 1, 2),
            "membership_card_no": "88001",
            "地址": "杭州",
            "_row": 2,
        },
        {
            "name": "李四",
            "phone": "139 0000 1111",
            "email": "",
            "birthday": "1990/1/2",
            "membership_card_no": "",
            "地址": "",
            "_row": 4,
        },
    ]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_csv_is_read_in_utf8_or_gb18030(encoding):
    upload = csv_upload(
        [["姓名", "电话", "备注"], ["张三", "13812345678", "老客户，回访"]], encoding=encoding
    )

    rows = list(read_spreadsheet(upload, upload.name))

    assert rows == [{"name": "张三", "phone": "13812345678", "notes": "老客户，回访", "_row": 2}]


def test_a_second_phone_column_is_the_other_phone_and_a_third_is_not_imported():
    upload = csv_upload(
        [["姓名", "手机", "电话", "联系电话"], ["张三", "13812345678", "0571-87654321", "1"]]
    )

    (row,) = read_spreadsheet(upload, upload.name)

    assert row == {
        "name": "张三",
        "phone": "13812345678",
        "phone2": "0571-87654321",
        "联系电话 (D)": "1",
        "_row": 2,
    }


def test_header_may_come_after_a_title_row():
    upload = csv_upload([["客户导入表"], [], ["序号", "姓名"], ["1", "张三"]])

    rows = list(read_spreadsheet(upload, upload.name))

    assert rows == [{"序号": "1", "name": "张三", "_row": 4}]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0", ".xls"),
        ("notes.txt", b"hello", ".xlsx or .csv"),
        ("broken.xlsx", b"not a zip file", "not an .xlsx"),
        ("empty.csv", b"", "empty"),
        ("no-name.csv", "手机,邮箱\n13812345678,a@b.cn\n".encode(), "name column"),
    ],
)
def test_unreadable_files_are_refused_as_a_whole(name, content, message):
    with pytest.raises(ImportFileInvalid, match=message):
        read_spreadsheet(io.BytesIO(content), name)


# --- Checking rows ------------------------------------------------------------------------------


def test_dry_run_reports_but_writes_nothing(store):
    upload = xlsx_upload(
        [HEADER, ["张三", "13812345678", "男", "1980-01-02", "VIP", "会员", "S001", "慢病"]]
    )

    result = run_import(upload, commit=False)

    assert (result.total, result.valid, result.created, result.committed) == (1, 1, 0, False)
    assert result.errors == []
    assert nothing_written()
    assert not Sequence.objects.filter(name="customer_number", value__gt=0).exists()


COLUMN_OF = {
    "name": "姓名",
    "phone": "手机",
    "email": "邮箱",
    "store": "门店",
    "birthday": "生日",
    "member_since": "入会日期",
    "level": "等级",
    "status": "状态",
    "gender": "性别",
    "source": "来源",
    "tags": "标签",
    "membership_card_no": "会员卡号",
    "qq": "QQ",
}


@pytest.mark.parametrize(
    ("cells", "field", "message"),
    [
        ({"手机": "1380013"}, "phone", "not a valid phone number"),
        ({"手机": "call me"}, "phone", "not a phone number"),
        ({"邮箱": "zhang@"}, "email", "not an e-mail address"),
        ({"门店": "不存在的店"}, "store", "Unknown store"),
        ({"生日": "1980-02-30"}, "birthday", "not a date"),
        ({"生日": "yesterday"}, "birthday", "not a date"),
        ({"生日": "future"}, "birthday", "cannot be in the future"),
        ({"入会日期": "future"}, "member_since", "cannot be in the future"),
        ({"生日": "1850-01-01"}, "birthday", "too far in the past"),
        ({"姓名": ""}, "name", "Enter the customer's name"),
        ({"姓名": "张" * 101}, "name", "at most 100 characters"),
        ({"等级": "钻石"}, "level", "is not one of: 普通、VIP、大客户"),
        ({"状态": "活跃"}, "status", "is not one of"),
        ({"性别": "其他"}, "gender", "is not one of"),
        ({"来源": "抖音"}, "source", "is not one of"),
        ({"标签": "好" * 51}, "tags", "at most 50 characters"),
        ({"会员卡号": "9" * 41}, "membership_card_no", "at most 40 characters"),
        ({"QQ": "12"}, "qq", "5 to 12 digits"),
    ],
)
def test_each_bad_cell_is_reported_with_its_row_field_and_value(store, cells, field, message):
    """A bad row is listed with the sheet row, the column, the raw value and why; it is not
    imported, but the good row next to it is."""
    future = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    header = ["姓名", "手机", "邮箱", "门店", "生日", "入会日期", "等级", "状态", "性别"]
    header += ["来源", "标签", "会员卡号", "QQ"]
    good = dict.fromkeys(header, "")
    good.update({"姓名": "李四", "手机": "13900001111"})
    bad = {**dict.fromkeys(header, ""), "姓名": "张三", "手机": "13812345678"}
    bad.update({k: (future if v == "future" else v) for k, v in cells.items()})
    upload = csv_upload([header, [good[h] for h in header], [bad[h] for h in header]])

    result = run_import(upload, commit=True)

    assert (result.total, result.valid, result.created) == (2, 1, 1)
    (error,) = result.errors
    assert (error.row, error.field) == (3, field)
    assert message in error.message
    assert error.value == bad[COLUMN_OF[field]]
    assert list(Customer.objects.values_list("name", flat=True)) == ["李四"]


def test_a_row_lists_every_problem_it_has(store):
    upload = csv_upload([HEADER, ["", "12345", "", "1990-13-01", "", "", "火星店", ""]])

    result = run_import(upload)

    assert errors_of(result) == [(2, "name"), (2, "phone"), (2, "birthday"), (2, "store")]


def test_duplicates_within_the_file_point_to_the_first_row(store):
    """The first row with a phone, e-mail or card goes in; later ones name the row they repeat."""
    upload = csv_upload(
        [
            ["姓名", "手机", "其他电话", "邮箱", "会员卡号"],
            ["张三", "13812345678", "", "zs@example.com", "VIP001"],
            ["张三丰", "+86 138-1234-5678", "", "", ""],
            ["李四", "13900001111", "13812345678", "ZS@example.com", "VIP001"],
        ]
    )

    result = run_import(upload, commit=True)

    assert errors_of(result) == [
        (3, "phone"),
        (4, "phone2"),
        (4, "email"),
        (4, "membership_card_no"),
    ]
    assert {e.message for e in result.errors} == {"Duplicate of row 2 in this file."}
    assert list(Customer.objects.values_list("name", flat=True)) == ["张三"]


def test_the_same_phone_twice_in_one_row_counts_once():
    upload = csv_upload([["姓名", "手机", "其他电话"], ["张三", "13812345678", "138 1234 5678"]])

    result = run_import(upload, commit=True)

    assert result.errors == []
    assert ContactPoint.objects.get().value == "+8613812345678"


def test_duplicates_of_existing_customers_name_the_customer(customer):
    """A phone, e-mail or card the archive already has points to the customer that has it."""
    other = make_customer(name="李四", phone="13900001111", membership_card_no="VIP001")
    upload = csv_upload(
        [
            ["客户编号", "姓名", "手机", "会员卡号"],
            ["", "张三", "138 1234 1234", ""],
            ["", "王五", "13700001111", "VIP001"],
            [other.number, "李四", "", ""],
        ]
    )

    result = run_import(upload, commit=True)

    assert [(e.row, e.field, e.message) for e in result.errors] == [
        (2, "phone", f"Already belongs to customer {customer.number} (张三)."),
        (3, "membership_card_no", f"Already belongs to customer {other.number} (李四)."),
        (4, "number", f"Customer {other.number} (李四) is already in the archive."),
    ]
    assert result.errors[0].value == "138 1234 1234"
    assert result.created == 0
    assert Customer.objects.count() == 2


def test_a_new_customer_number_in_the_file_is_ignored():
    """Numbers are handed out by Kefu; one it does not know is not a duplicate."""
    upload = csv_upload([["客户编号", "姓名"], ["OLD-17", "张三"]])

    result = run_import(upload, commit=True)

    assert result.errors == []
    assert Customer.objects.get().number.startswith("KH")


@pytest.mark.parametrize(
    "value", ["1990-01-02", "1990/1/2", "1990/01/02", "19900102", "1990.1.2", "1990年1月2日"]
)
def test_dates_in_the_usual_forms_are_read(value):
    upload = csv_upload([["姓名", "生日"], ["张三", value]])

    run_import(upload, commit=True)

    assert Customer.objects.get().birthday == dt.date(1990, 1, 2)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (
            ["女", "大客户", "销户", "微信", "平和"],
            ("female", "key_account", "closed", "wechat", "composed"),
        ),
        (
            ["male", "VIP", "customer", "walk_in", "irate"],
            ("male", "vip", "customer", "walk_in", "irate"),
        ),
        (["", "", "", "", ""], ("", "normal", "prospect", "import", "")),
        (
            ["Female", "key account", "Member", "Web chat", "Confused"],
            ("female", "key_account", "member", "web_chat", "confused"),
        ),
    ],
)
def test_choices_in_chinese_or_english_are_read(cells, expected):
    upload = csv_upload([["姓名", "性别", "等级", "状态", "来源", "性格"], ["张三", *cells]])

    result = run_import(upload, commit=True)

    assert result.errors == []
    customer = Customer.objects.get()
    assert (
        customer.gender,
        customer.level,
        customer.status,
        customer.source,
        customer.temperament,
    ) == expected


def test_store_by_code_or_name_and_a_closed_store_is_refused(store, other_store):
    other_store.is_active = False
    other_store.save()
    upload = csv_upload(
        [["姓名", "门店"], ["张三", "s001"], ["李四", "人民路店"], ["王五", "S002"]]
    )

    result = run_import(upload, commit=True)

    assert [(e.row, e.field) for e in result.errors] == [(4, "store")]
    assert "closed" in result.errors[0].message
    assert set(Customer.objects.values_list("store__code", flat=True)) == {"S001"}


def test_rows_from_code_are_numbered_from_two_and_may_hold_dates():
    """The demo loader passes dicts with date objects and no row numbers."""
    rows = [
        {"name": "张三", "phone": "13812345678", "birthday": dt.date(1980, 1, 2), "tags": "a,b"},
        {"name": "", "phone": "13900001111", "birthday": None, "tags": ""},
    ]

    result = customer_import_rows(actor=None, rows=rows, commit=True)

    assert errors_of(result) == [(3, "name")]
    assert Customer.objects.get().birthday == dt.date(1980, 1, 2)


def test_saved_rows_import_like_the_file_they_were_read_from(tmp_path):
    """The page keeps the rows it read for the confirm step; they give the same import."""
    upload = xlsx_upload(
        [["姓名", "生日", "手机", "地址"], ["张三", dt.date(1980, 1, 2), 13812345678, "杭州"]]
    )
    saved = tmp_path / "rows.jsonl"
    with saved.open("w", encoding="utf-8") as out:
        first = customer_import_rows(
            actor=None,
            rows=imports.import_rows_save(read_spreadsheet(upload, upload.name), out),
            commit=False,
        )

    with saved.open(encoding="utf-8") as rows:
        second = customer_import_rows(actor=None, rows=imports.import_rows_load(rows), commit=True)

    assert (
        (first.valid, first.unknown_columns)
        == (second.valid, second.unknown_columns)
        == (
            1,
            ["地址"],
        )
    )
    customer = Customer.objects.get()
    assert (customer.birthday, customer.contacts.get().value) == (
        dt.date(1980, 1, 2),
        "+8613812345678",
    )


# --- Committing ----------------------------------------------------------------------------------


def test_commit_writes_customers_contacts_tags_events_and_one_audit_entry(records_officer, store):
    upload = xlsx_upload(
        [
            [*HEADER, "其他电话", "邮箱", "会员卡号", "入会日期", "备注"],
            [*ZHANG, "0571-87654321", "ZS@QQ.com", "VIP001", "", "爱打电话"],
            ["李四", "13900001111", "", "", "", "", "", "慢病,高血压", "", "", "", "", ""],
            ["", "bad", "", "", "", "", "", "", "", "", "", "", ""],
        ]
    )

    result = run_import(upload, actor=records_officer, commit=True)

    assert (result.total, result.valid, result.created, result.committed) == (3, 2, 2, True)
    zhang = Customer.objects.get(name="张三")
    assert (zhang.gender, zhang.birthday, zhang.level, zhang.status) == (
        "male",
        dt.date(1980, 1, 2),
        "vip",
        "member",
    )
    assert zhang.store == store
    assert zhang.member_since == timezone.localdate()  # a member without a date joins today
    assert (zhang.membership_card_no, zhang.notes, zhang.source) == ("VIP001", "爱打电话", "import")
    assert zhang.created_by == records_officer
    assert sorted(t.name for t in zhang.tags.all()) == ["慢病", "母婴"]
    contacts = {(c.kind, c.value, c.is_primary, c.last4) for c in zhang.contacts.all()}
    assert contacts == {
        ("phone", "+8613812345678", True, "5678"),
        ("phone", "+8657187654321", False, "4321"),
        ("email", "zs@qq.com", True, ""),
    }
    assert zhang.search_text == customer_search_text(zhang, zhang.contacts.all(), zhang.tags.all())
    assert list(customer_search(Customer.objects.all(), "zs 5678")) == [zhang]
    event = zhang.events.get()
    assert (event.kind, event.actor, event.data) == (
        CustomerEvent.Kind.IMPORTED,
        records_officer,
        {"file": "customers.xlsx", "row": 2},
    )
    assert Tag.objects.filter(name="高血压").exists()
    entry = AuditEntry.objects.get(action="customer.imported")
    assert entry.actor == records_officer
    assert entry.changes == {
        "file": "customers.xlsx",
        "rows": 3,
        "created": 2,
        "rejected": 1,
        "numbers": [result.first_number, result.last_number],
        "unknown_columns": [],
    }
    assert {result.first_number, result.last_number} == set(
        Customer.objects.values_list("number", flat=True)
    )


def test_numbers_continue_the_sequence_of_customers_made_one_by_one(customer):
    upload = csv_upload([["姓名"], ["李四"], ["王五"]])

    result = run_import(upload, commit=True)

    first = int(customer.number[2:])
    assert [result.first_number, result.last_number] == [
        f"KH{first + 1:08d}",
        f"KH{first + 2:08d}",
    ]


def test_a_failure_half_way_through_the_write_leaves_nothing(monkeypatch, store):
    """Customers and contacts are inserted before the events; when the events fail, none of it
    stays (nor the tags, the numbers or the audit entry)."""
    insert_values = imports._insert_values

    def failing_insert(model, names, rows, **kwargs):
        if model is CustomerEvent:
            raise RuntimeError("disk full")
        insert_values(model, names, rows, **kwargs)

    monkeypatch.setattr(imports, "_insert_values", failing_insert)
    upload = csv_upload(
        [["姓名", "手机", "标签"], ["张三", "13812345678", "慢病"], ["李四", "", ""]]
    )

    with pytest.raises(RuntimeError, match="disk full"):
        run_import(upload, commit=True)

    assert nothing_written()
    assert not Sequence.objects.filter(name="customer_number", value__gt=0).exists()


def test_a_failing_audit_entry_rolls_the_import_back(monkeypatch):
    def broken_audit(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(imports, "audit_record", broken_audit)
    upload = csv_upload([["姓名", "手机"], ["张三", "13812345678"]])

    with pytest.raises(RuntimeError):
        run_import(upload, commit=True)

    assert nothing_written()


def test_a_phone_taken_while_the_import_runs_stops_it_whole(monkeypatch):
    """Between the check and the write someone saves one of the phones: the database refuses the
    duplicate and the import stops with nothing written, asking to run again."""
    monkeypatch.setattr(
        imports._Checker,
        "check_existing",
        lambda self: make_customer(name="王五", phone="13900001111"),
    )
    upload = csv_upload([["姓名", "手机"], ["张三", "13812345678"], ["李四", "13900001111"]])

    with pytest.raises(ImportConflict):
        run_import(upload, commit=True)

    assert list(Customer.objects.values_list("name", flat=True)) == ["王五"]  # made in between
    assert not CustomerEvent.objects.filter(kind=CustomerEvent.Kind.IMPORTED).exists()


def test_importing_needs_the_import_permission(agent, records_officer):
    upload = csv_upload([["姓名"], ["张三"]])

    with pytest.raises(Forbidden):
        run_import(upload, actor=agent)
    assert run_import(upload, actor=records_officer, commit=True).created == 1


def test_staff_limited_to_their_store_import_into_it(store_manager, store, other_store):
    from django.contrib.auth.models import Permission

    store_manager.user_permissions.add(Permission.objects.get(codename="import_customer"))
    actor = User.objects.get(pk=store_manager.pk)
    upload = csv_upload([["姓名", "门店"], ["张三", ""], ["李四", "S001"], ["王五", "解放路店"]])

    result = run_import(upload, actor=actor, commit=True)

    assert [(e.row, e.field) for e in result.errors] == [(4, "store")]
    assert set(Customer.objects.values_list("store", flat=True)) == {store.pk}


# --- Pages -----------------------------------------------------------------------------------------


def client_for(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Jobs started inside the block run (in-process, as the worker would) when it ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def job_of(response) -> Job:
    """The job a page started, from where it sent the browser."""
    location = response.headers.get("HX-Redirect") or response["Location"]
    match = re.fullmatch(r"/jobs/(\d+)/", location)
    assert match, location
    return Job.objects.get(pk=int(match[1]))


@pytest.mark.parametrize(
    ("role", "page_status", "upload_status"),
    [
        ("anonymous", 302, 302),
        ("agent", 403, 403),
        ("records_officer", 200, 302),
        ("manager", 200, 302),
    ],
)
def test_import_page_permissions(users_by_role, media, run_jobs, role, page_status, upload_status):
    client = client_for(users_by_role[role])
    url = reverse("customers:customer_import")

    page = client.get(url)
    with run_jobs():
        upload = client.post(url, {"file": csv_upload([["姓名"], ["张三"]])})

    assert page.status_code == page_status
    assert upload.status_code == upload_status
    if role == "anonymous":
        assert page["Location"].startswith(reverse("accounts:login"))
        assert upload["Location"].startswith(reverse("accounts:login"))
    elif upload_status == 302:
        assert job_of(upload).owner == users_by_role[role]
    assert Job.objects.count() == (1 if upload_status == 302 and role != "anonymous" else 0)
    assert not Customer.objects.exists()


def test_upload_is_checked_by_a_job_then_imported_by_another(
    records_officer, media, store, run_jobs
):
    """The upload starts a check job (nothing saved); its page offers to import the valid
    rows, which starts the import job; confirming twice does not import twice."""
    client = client_for(records_officer)
    url = reverse("customers:customer_import")
    rows = [["姓名", "手机", "门店"], ["张三", "13812345678", "S001"], ["李四", "123", "S001"]]

    with run_jobs():
        started = client.post(url, {"file": xlsx_upload(rows)})

    check = job_of(started)
    assert (check.kind, check.status, check.owner) == (
        "customer_import_check",
        "succeeded",
        records_officer,
    )
    assert (check.summary["rows"], check.summary["valid"], check.summary["invalid"]) == (2, 1, 1)
    assert [e[0] for e in check.summary["errors"]] == [3]
    assert not Customer.objects.exists()
    folder = media / "jobs" / str(check.pk)
    assert sorted(p.name for p in folder.iterdir()) == ["errors.csv", "rows.jsonl", "upload.xlsx"]
    page = client.get(check.get_absolute_url())
    assert page.status_code == 200
    confirm_url = reverse("customers:customer_import_confirm", args=[check.pk])
    assert confirm_url in page.content.decode()
    assert "Import 1 valid row" in page.content.decode()

    with run_jobs():
        confirmed = client.post(confirm_url)

    imported = job_of(confirmed)
    assert (imported.kind, imported.status, imported.source) == (
        "customer_import",
        "succeeded",
        check,
    )
    assert imported.summary["created"] == 1
    assert list(Customer.objects.values_list("name", flat=True)) == ["张三"]
    assert sorted(p.name for p in folder.iterdir()) == ["errors.csv"]  # the rows are in the archive
    page = client.get(imported.get_absolute_url()).content.decode()
    assert "Imported 1 customer" in page
    assert job_of(client.post(confirm_url)) == imported  # confirmed once only
    assert Customer.objects.count() == 1
    assert Job.objects.count() == 2


def test_a_stopped_import_offers_to_check_the_same_file_again(records_officer, media, run_jobs):
    """The upload is kept until an import of it succeeds: after a cancelled (or failed) import
    the file is checked again from its page, without uploading it again."""
    client = client_for(records_officer)
    with run_jobs():
        check = job_of(
            client.post(
                reverse("customers:customer_import"), {"file": csv_upload([["姓名"], ["张三"]])}
            )
        )
    imported = job_of(client.post(reverse("customers:customer_import_confirm", args=[check.pk])))
    client.post(reverse("jobs:job_cancel", args=[imported.pk]))  # before a worker took it
    page = client.get(imported.get_absolute_url()).content.decode()
    recheck_url = reverse("customers:customer_import_recheck", args=[imported.pk])
    assert recheck_url in page

    with run_jobs():
        response = client.post(recheck_url)
    again = job_of(response)

    imported.refresh_from_db()
    assert imported.status == "cancelled"
    assert (again.kind, again.status, again.summary["valid"]) == (
        "customer_import_check",
        "succeeded",
        1,
    )
    assert again.pk != check.pk
    assert not Customer.objects.exists()


def test_only_the_uploader_can_confirm_an_upload(records_officer, manager, media, run_jobs):
    with run_jobs():
        started = client_for(records_officer).post(
            reverse("customers:customer_import"), {"file": csv_upload([["姓名"], ["张三"]])}
        )
    check = job_of(started)

    response = client_for(manager).post(
        reverse("customers:customer_import_confirm", args=[check.pk])
    )

    assert response.status_code == 404
    assert not Customer.objects.exists()
    assert not check.followers.exists()


def test_the_check_offers_the_full_error_report(records_officer, media, run_jobs):
    client = client_for(records_officer)
    with run_jobs():
        started = client.post(
            reverse("customers:customer_import"),
            {"file": csv_upload([["姓名", "手机"], ["", "=1+2"], ["李四", "1"]])},
        )
    check = job_of(started)
    page = client.get(check.get_absolute_url()).content.decode()
    assert reverse("jobs:job_download", args=[check.pk]) in page

    report = client.get(reverse("jobs:job_download", args=[check.pk]))

    assert report.status_code == 200
    assert report["Content-Disposition"].startswith("attachment")
    assert 'filename="customers-errors.csv"' in report["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert [line[0] for line in lines[1:]] == ["2", "2", "3"]
    assert lines[2][2] == "'=1+2"  # never a formula when opened in a spreadsheet
    download = AuditEntry.objects.get(action="job.result_downloaded")
    assert (download.actor, download.target_id) == (records_officer, str(check.pk))


def test_htmx_upload_sends_the_browser_to_the_job(records_officer, media, run_jobs):
    with run_jobs():
        response = client_for(records_officer).post(
            reverse("customers:customer_import"),
            {"file": csv_upload([["姓名"], ["张三"]])},
            headers={"HX-Request": "true"},
        )

    assert response.status_code == 200
    assert response["HX-Redirect"] == job_of(response).get_absolute_url()


def test_htmx_upload_with_a_form_error_gets_the_panel_only(records_officer, media):
    response = client_for(records_officer).post(
        reverse("customers:customer_import"),
        {"file": SimpleUploadedFile("list.txt", b"name\nx\n")},
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="import-panel">')
    assert "<html" not in html
    assert not Job.objects.exists()


def test_a_file_without_a_name_column_fails_its_check_with_the_reason(
    records_officer, media, run_jobs
):
    client = client_for(records_officer)
    with run_jobs():
        started = client.post(
            reverse("customers:customer_import"),
            {"file": SimpleUploadedFile("list.csv", "手机\n13812345678\n".encode())},
        )
    check = job_of(started)

    assert check.status == "failed"
    assert "name column" in check.error_display
    page = client.get(check.get_absolute_url()).content.decode()
    assert "name column" in page
    assert "Upload another file" in page
    assert not Customer.objects.exists()


def test_an_upload_of_another_file_type_is_refused_on_the_form(records_officer, media):
    response = client_for(records_officer).post(
        reverse("customers:customer_import"),
        {"file": SimpleUploadedFile("list.txt", b"name\nx\n")},
    )

    assert response.status_code == 200
    assert ".xlsx or .csv" in " ".join(response.context["form"].errors["file"])
    assert not Job.objects.exists()
    assert not (media / "jobs").exists()


def test_a_file_over_the_size_limit_is_refused(records_officer, media, settings):
    settings.IMPORT_MAX_BYTES = 1024 * 1024
    big = csv_upload([["姓名", "备注"]] + [["张三", "x" * 1000]] * 1100)

    response = client_for(records_officer).post(reverse("customers:customer_import"), {"file": big})

    assert "larger than 1 MB" in " ".join(response.context["form"].errors["file"])


def test_the_template_download_has_the_headers_the_import_reads(records_officer):
    response = client_for(records_officer).get(
        reverse("customers:customer_import"), {"template": "1"}
    )

    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    header = next(sheet.iter_rows(values_only=True))
    assert list(header) == [c.header for c in imports.COLUMNS]
    assert list(read_spreadsheet(io.BytesIO(response.content), "template.xlsx")) == []


# --- Command ---------------------------------------------------------------------------------------


def test_import_command_checks_then_commits(tmp_path, records_officer, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_upload([["姓名", "手机"], ["张三", "13812345678"], ["", "1"]]).read())
    out = io.StringIO()

    call_command("import", str(path), stdout=out)

    text = out.getvalue()
    assert "2 rows, 1 valid, 1 with problems" in text
    assert "row 3, Name" in text
    assert "row 3, Mobile phone [1]" in text
    assert "--commit" in text
    assert not Customer.objects.exists()
    check = Job.objects.get()
    assert (check.kind, check.in_process, check.status) == (
        "customer_import_check",
        True,
        "succeeded",
    )
    assert not (tmp_path / "media" / "jobs" / str(check.pk) / "rows.jsonl").exists()

    call_command("import", str(path), "--commit", "--user", "records", stdout=out)

    assert "Imported 1 customers" in out.getvalue()
    assert Customer.objects.get().created_by == records_officer


def test_import_command_refuses_unknown_users_and_missing_permissions(tmp_path, agent):
    path = tmp_path / "customers.csv"
    path.write_text("姓名\n张三\n", encoding="utf-8")

    with pytest.raises(CommandError, match="No user"):
        call_command("import", str(path), "--user", "nobody")
    with pytest.raises(CommandError, match="permission"):
        call_command("import", str(path), "--commit", "--user", "agent")
    with pytest.raises(CommandError, match="No file"):
        call_command("import", str(tmp_path / "missing.csv"))
    assert not Customer.objects.exists()


def test_choice_cells_accept_the_labels_the_ui_shows(records_officer):
    """A sheet filled in with the words of the Chinese UI imports without errors."""
    rows = [
        {
            "name": "赵六",
            "phone": "13500001234",
            "temperament": "迷茫型",
            "status": "成交客户",
            "level": "大客户",
        }
    ]
    result = customer_import_rows(actor=records_officer, rows=rows, commit=True)
    assert result.errors == []
    customer = Customer.objects.get(name="赵六")
    assert (customer.temperament, customer.status, customer.level) == (
        "confused",
        "customer",
        "key_account",
    )


# --- Progress -------------------------------------------------------------------------------------


def test_an_import_reports_rows_done_of_total_in_each_step():
    """Checking reports every PROGRESS_EVERY rows of the expected number; preparing and saving
    count the valid rows; "saving" is said before the write transaction begins."""
    rows = [{"name": f"客户{i}", "phone": f"138{i:08d}"} for i in range(1200)]
    rows[10]["phone"] = "1"
    heard: list[tuple[str, int, int | None, int]] = []

    def progress(phase, done, total):
        heard.append((phase, done, total, len(connection.atomic_blocks)))

    base = len(connection.atomic_blocks)
    result = customer_import_rows(
        actor=None, rows=rows, commit=True, progress=progress, expected_rows=1200
    )

    assert result.created == 1199
    checking = [(done, total) for phase, done, total, _depth in heard if phase == "checking"]
    assert checking == [(0, 1200), (499, 1200), (999, 1200), (1200, 1200)]
    preparing = [(done, total) for phase, done, total, _depth in heard if phase == "preparing"]
    assert preparing == [(0, 1199), (500, 1199), (1000, 1199), (1199, 1199)]
    saving = [(d, t, depth) for phase, d, t, depth in heard if phase == "saving"]
    assert saving[0] == (0, 1199, base)  # outside the transaction: others can see it
    assert all(depth > base for _d, _t, depth in saving[1:])
    assert saving[-1][:2] == (1199, 1199)
    assert [phase for phase, *_rest in heard] == sorted(
        (phase for phase, *_rest in heard), key=["checking", "preparing", "saving"].index
    )


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_a_sheet_says_how_many_rows_to_expect(kind):
    rows = [["客户导入表"], ["姓名", "手机"], ["张三", "13812345678"], ["李四", ""], ["王五", ""]]
    upload = xlsx_upload(rows) if kind == "xlsx" else csv_upload(rows)

    sheet = imports.open_spreadsheet(upload, upload.name)

    assert sheet.estimated_rows == 3
    assert len(list(sheet.rows)) == 3


def test_import_command_shows_a_progress_line(tmp_path, records_officer):
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_upload([["姓名", "手机"], ["张三", "13812345678"], ["李四", ""]]).read())
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "import", str(path), "--commit", "--user", "records", "--progress", stdout=out, stderr=err
    )

    line = err.getvalue()
    assert re.search(r"\rchecking +2/2 rows", line)
    assert re.search(r"\rsaving +2/2 rows", line)
    assert line.endswith("\n")
    assert "Imported 2 customers" in out.getvalue()
    job = Job.objects.get()  # the command's work is a job of the user's, run in its process
    assert (job.kind, job.owner, job.in_process, job.status) == (
        "customer_import",
        records_officer,
        True,
        "succeeded",
    )


def test_the_progress_line_gives_the_rate_and_the_time_left():
    out = io.StringIO()
    line = ProgressLine(out)

    line(ProgressReport("checking", 45_000, 100_000, time.monotonic() - 10))

    assert out.getvalue() == "\rchecking     45,000/100,000 rows  4,500 rows/s  12 s left"
