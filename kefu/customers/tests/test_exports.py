import csv
import datetime as dt
import io
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from kefu.accounts.models import User
from kefu.audit.models import AuditEntry
from kefu.core.exceptions import Forbidden, ValidationFailed
from kefu.customers import services
from kefu.customers.exports import customer_export_csv, customer_export_xlsx
from kefu.customers.imports import COLUMNS, customer_import_rows, read_spreadsheet
from kefu.customers.models import Customer
from kefu.customers.tests.factories import make_customer
from kefu.jobs.models import Job

pytestmark = pytest.mark.django_db

HEADERS = [c.header for c in COLUMNS]


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in their English source text."""
    with translation.override("en"):
        yield


@pytest.fixture
def zhang(store):
    customer = services.customer_create(
        actor=None,
        data={
            "name": "张三",
            "gender": "male",
            "birthday": dt.date(1980, 1, 2),
            "level": "vip",
            "status": "member",
            "member_since": dt.date(2020, 5, 6),
            "source": "wechat",
            "store": store,
            "temperament": "composed",
            "membership_card_no": "VIP001",
            "notes": "=HYPERLINK(1)",
        },
        contacts=[
            {"kind": "phone", "value": "13812345678", "is_primary": True},
            {"kind": "phone", "value": "0571-87654321"},
            {"kind": "email", "value": "zs@qq.com"},
            {"kind": "qq", "value": "10001"},
        ],
        tags=["慢病", "母婴"],
    )
    return customer


@pytest.fixture
def exporter(agent):
    """Someone who may export but not see full contacts (no role has that mix today)."""
    agent.user_permissions.add(Permission.objects.get(codename="export_customer"))
    return User.objects.get(pk=agent.pk)


def sheet_rows(content: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).active
    return [
        [v.date() if isinstance(v, dt.datetime) else v for v in row]
        for row in sheet.iter_rows(values_only=True)
    ]


def as_dict(row: list) -> dict:
    return dict(zip(HEADERS, row, strict=True))


def test_export_needs_the_export_permission(agent, customer):
    with pytest.raises(Forbidden):
        customer_export_xlsx(actor=agent, queryset_filters={})
    assert not AuditEntry.objects.filter(action="customer.exported").exists()


def test_export_writes_every_column_with_full_contacts_for_records_officers(records_officer, zhang):
    content, count = customer_export_xlsx(actor=records_officer, queryset_filters={})

    header, row = sheet_rows(content)
    assert count == 1
    assert header == HEADERS
    assert as_dict(row) == {
        "客户编号": zhang.number,
        "姓名": "张三",
        "手机": "13812345678",
        "其他电话": "57187654321",
        "邮箱": "zs@qq.com",
        "QQ": "10001",
        "微信openid": None,
        "性别": "男",
        "生日": dt.date(1980, 1, 2),  # a date cell
        "等级": "VIP",
        "状态": "会员",
        "门店": "人民路店",
        "标签": "慢病、母婴",
        "来源": "微信",
        "会员卡号": "VIP001",
        "入会日期": dt.date(2020, 5, 6),
        "性格": "沉稳型",
        "备注": "=HYPERLINK(1)",  # text, not a formula
    }


def test_export_masks_contacts_without_the_full_contact_permission(exporter, zhang):
    content, _count = customer_export_xlsx(actor=exporter, queryset_filters={})

    row = as_dict(sheet_rows(content)[1])
    assert (row["手机"], row["其他电话"], row["邮箱"], row["QQ"]) == (
        "138****5678",
        "571****4321",
        "z***@qq.com",
        "10****01",
    )
    entry = AuditEntry.objects.get(action="customer.exported")
    assert entry.changes["full_contacts"] is False


def test_export_applies_the_list_filters_and_leaves_out_merged_records(manager, store, other_store):
    vip = make_customer(name="王五", level="vip", store=store)
    make_customer(name="赵六", level="vip", store=other_store)
    make_customer(name="钱七", level="normal", store=store)
    duplicate = make_customer(name="王五", level="vip", store=store)
    services.customer_merge(actor=None, target_id=vip.pk, duplicate_id=duplicate.pk)

    content, count = customer_export_xlsx(
        actor=manager, queryset_filters={"level": "vip", "store": str(store.pk), "page": "2"}
    )

    assert count == 1
    assert [row[0] for row in sheet_rows(content)[1:]] == [vip.number]
    entry = AuditEntry.objects.get(action="customer.exported")
    assert entry.actor == manager
    assert entry.changes == {
        "filters": {"level": "vip", "store": str(store.pk)},
        "rows": 1,
        "full_contacts": True,
        "format": "xlsx",
    }


def test_export_search_finds_the_same_customers_as_the_list(records_officer):
    make_customer(name="张三", phone="13812345678")
    make_customer(name="李四", phone="13900001111")

    content, count = customer_export_xlsx(actor=records_officer, queryset_filters={"q": "zs"})

    assert count == 1
    assert sheet_rows(content)[1][1] == "张三"


def test_an_invalid_filter_exports_nothing(records_officer, customer):
    """An unknown store would otherwise be ignored and export every customer."""
    with pytest.raises(ValidationFailed):
        customer_export_xlsx(actor=records_officer, queryset_filters={"store": "999999"})
    assert not AuditEntry.objects.filter(action="customer.exported").exists()


def test_csv_export_has_the_same_columns_and_guards_formulas(records_officer, zhang):
    content, count = customer_export_csv(actor=records_officer, queryset_filters={})

    header, row = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert count == 1
    assert header == HEADERS
    assert as_dict(row)["生日"] == "1980-01-02"
    assert as_dict(row)["备注"] == "'=HYPERLINK(1)"
    assert AuditEntry.objects.get(action="customer.exported").changes["format"] == "csv"


@pytest.mark.parametrize("export", [customer_export_xlsx, customer_export_csv])
def test_re_importing_an_export_finds_every_row_already_there(records_officer, zhang, export):
    """Exported rows come back as duplicates of the customers they came from."""
    other = make_customer(name="李四", phone="13900001111")
    content, _count = export(actor=records_officer, queryset_filters={})
    name = "customers.xlsx" if export is customer_export_xlsx else "customers.csv"

    result = customer_import_rows(
        actor=records_officer, rows=read_spreadsheet(io.BytesIO(content), name), commit=True
    )

    assert (result.total, result.valid, result.created) == (2, 0, 0)
    messages = {(e.field, e.message) for e in result.errors}
    assert ("number", f"Customer {zhang.number} (张三) is already in the archive.") in messages
    assert ("phone", f"Already belongs to customer {zhang.number} (张三).") in messages
    assert ("phone2", f"Already belongs to customer {zhang.number} (张三).") in messages
    assert ("membership_card_no", f"Already belongs to customer {zhang.number} (张三).") in messages
    assert ("phone", f"Already belongs to customer {other.number} (李四).") in messages
    assert Customer.objects.count() == 2


def test_an_export_re_imported_into_an_empty_archive_gives_the_same_customers(
    records_officer, zhang
):
    """Every exported column reads back to the value it was written from."""
    content, _count = customer_export_xlsx(actor=records_officer, queryset_filters={})
    before = Customer.objects.get()
    before_contacts = sorted((c.kind, c.value, c.is_primary) for c in before.contacts.all())
    Customer.objects.all().delete()

    result = customer_import_rows(
        actor=records_officer,
        rows=read_spreadsheet(io.BytesIO(content), "customers.xlsx"),
        commit=True,
    )

    assert result.errors == []
    after = Customer.objects.get()
    fields = [
        "name",
        "gender",
        "birthday",
        "level",
        "status",
        "source",
        "store_id",
        "temperament",
        "membership_card_no",
        "member_since",
        "notes",
    ]
    assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]
    assert sorted(t.name for t in after.tags.all()) == ["慢病", "母婴"]
    assert sorted((c.kind, c.value, c.is_primary) for c in after.contacts.all()) == before_contacts
    assert after.number != before.number  # numbers are never reused


def test_masked_contacts_of_an_export_are_not_imported_as_contacts(exporter, zhang):
    content, _count = customer_export_xlsx(actor=exporter, queryset_filters={})
    Customer.objects.all().delete()

    result = customer_import_rows(
        actor=None, rows=read_spreadsheet(io.BytesIO(content), "masked.xlsx"), commit=True
    )

    assert [(e.field, e.message) for e in result.errors] == [
        ("phone", "“138****5678” is masked; import the full value."),
        ("phone2", "“571****4321” is masked; import the full value."),
        ("email", "“z***@qq.com” is masked; import the full value."),
        ("qq", "“10****01” is masked; import the full value."),
    ]
    assert not Customer.objects.exists()


def client_for(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Jobs started inside the block run (in-process, as the worker would) when it ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def job_of(response) -> Job:
    match = re.fullmatch(r"/jobs/(\d+)/", response["Location"])
    assert match, response["Location"]
    return Job.objects.get(pk=int(match[1]))


def download(client, job: Job) -> tuple[str, str, bytes]:
    response = client.get(reverse("jobs:job_download", args=[job.pk]))
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    return response["Content-Type"], response["Content-Disposition"], content


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("agent", 403), ("records_officer", 200), ("manager", 200)],
)
def test_export_page_permissions(users_by_role, customer, media, run_jobs, role, status):
    client = client_for(users_by_role[role])

    page = client.get(reverse("customers:customer_export"))
    with run_jobs():
        started = client.post(reverse("customers:customer_export"))

    assert page.status_code == status
    if role == "anonymous":
        assert page["Location"].startswith(reverse("accounts:login"))
        assert started["Location"].startswith(reverse("accounts:login"))
    elif status == 403:
        assert started.status_code == 403
    else:
        assert job_of(started).status == "succeeded"
    exported = AuditEntry.objects.filter(action="customer.exported").count()
    assert exported == (1 if status == 200 else 0)
    assert Job.objects.count() == (1 if status == 200 else 0)


def test_export_page_says_what_would_be_exported(records_officer, store, customer):
    make_customer(name="王五", store=store)
    make_customer(name="赵六", store=store)

    page = client_for(records_officer).get(
        reverse("customers:customer_export"), {"store": store.pk}
    )

    html = page.content.decode()
    assert "2 customers match" in html
    assert f'name="store" value="{store.pk}"' in html
    assert "人民路店" in html  # the filter in words
    assert not AuditEntry.objects.filter(action="customer.exported").exists()
    assert not Job.objects.exists()


def test_export_job_writes_the_filtered_list_for_download(
    records_officer, store, customer, media, run_jobs
):
    make_customer(name="王五", store=store)
    client = client_for(records_officer)

    with run_jobs():
        started = client.post(reverse("customers:customer_export"), {"store": store.pk})

    job = job_of(started)
    assert (job.kind, job.status, job.summary["rows"]) == ("customer_export", "succeeded", 1)
    assert job.summary["filters"] == {"store": str(store.pk)}
    content_type, disposition, content = download(client, job)
    assert content_type.startswith("application/vnd.openxmlformats")
    assert disposition.startswith('attachment; filename="customers-')
    assert [row[1] for row in sheet_rows(content)[1:]] == ["王五"]
    exported = AuditEntry.objects.get(action="customer.exported")
    assert exported.changes["job"] == job.pk
    assert exported.changes["rows"] == 1
    downloaded = AuditEntry.objects.get(action="job.result_downloaded")
    assert (downloaded.actor, downloaded.changes["rows"]) == (records_officer, 1)


def test_export_job_can_give_csv(records_officer, customer, media, run_jobs):
    client = client_for(records_officer)
    with run_jobs():
        started = client.post(reverse("customers:customer_export"), {"format": "csv", "q": "张三"})

    content_type, disposition, content = download(client, job_of(started))

    assert content_type == "text/csv"
    assert disposition.endswith('.csv"')
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == [customer.number]


@pytest.mark.parametrize("method", ["get", "post"])
def test_export_page_with_a_bad_filter_goes_back_to_the_list(
    records_officer, customer, media, method
):
    response = getattr(client_for(records_officer), method)(
        reverse("customers:customer_export"), {"store": "999999"}
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("customers:customer_list"))
    assert not AuditEntry.objects.filter(action="customer.exported").exists()
    assert not Job.objects.exists()


def test_only_whoever_exported_downloads_the_file(
    records_officer, manager, customer, media, run_jobs
):
    with run_jobs():
        started = client_for(records_officer).post(reverse("customers:customer_export"))
    job = job_of(started)

    response = client_for(manager).get(reverse("jobs:job_download", args=[job.pk]))

    assert response.status_code == 404
    assert not AuditEntry.objects.filter(action="job.result_downloaded").exists()
