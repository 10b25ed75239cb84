"""Phone numbers as people type them: letters are refused, not dropped; a number written in
groups is found whatever the separators (SQLite's FTS5 and PostgreSQL alike)."""

import pytest
from django.test import Client
from django.urls import reverse

from kefu.core.exceptions import ValidationFailed
from kefu.customers.contacts import ContactInvalid, phone_normalize
from kefu.customers.models import Customer
from kefu.customers.selectors import customer_search
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "typed",
    ["abc13900000002", "139abc00000002", "13900000002x", "tel:13900000002", "1-800-FLOWERS"],
)
def test_a_phone_with_letters_is_refused(typed):
    with pytest.raises(ContactInvalid) as exc:
        phone_normalize(typed)
    assert typed in str(exc.value)


@pytest.mark.parametrize(
    "typed",
    ["13900000002", "139 0000 0002", "139-0000-0002", "+86 139 0000 0002", "１３９００００００02"],
)
def test_written_out_numbers_are_read(typed):
    assert phone_normalize(typed) == "+8613900000002"


def test_the_service_refuses_a_phone_with_letters_and_writes_nothing():
    with pytest.raises(ValidationFailed):
        make_customer(name="王五", phone="abc13900000002")
    assert not Customer.objects.exists()


def test_the_new_customer_page_names_the_phone_field(agent):
    client = Client(headers={"accept-language": "zh-hans"})
    client.force_login(agent)
    response = client.post(
        reverse("customers:customer_create"), {"name": "王五", "phone": "abc13900000002"}
    )
    html = response.content.decode()
    assert "“abc13900000002”不是电话号码" in html
    assert not Customer.objects.exists()


@pytest.fixture
def numbers(db):
    mobile = make_customer(name="李梅", phone="13857123456")
    landline = make_customer(name="康宁门店", phone="0571-87061128")
    make_customer(name="张三", phone="13912345678")
    return mobile, landline


@pytest.mark.parametrize(
    "query",
    [
        "13857123456",
        "138 5712 3456",
        "138-5712-3456",
        "+86 138 5712 3456",
        "+86-138-5712-3456",
        "138 5712",  # the start of the number
        "李梅 138 5712 3456",
        "１３８ ５７１２ ３４５６",
    ],
)
def test_a_mobile_number_is_found_however_it_is_written(numbers, query):
    mobile, _landline = numbers
    assert list(customer_search(Customer.objects.all(), query)) == [mobile]


@pytest.mark.parametrize("query", ["0571-87061128", "(0571) 8706 1128", "0571 8706-1128"])
def test_a_landline_is_found_with_its_area_code(numbers, query):
    _mobile, landline = numbers
    assert list(customer_search(Customer.objects.all(), query)) == [landline]


def test_the_last_four_digits_and_a_name_still_match_separately(numbers):
    mobile, _landline = numbers
    assert list(customer_search(Customer.objects.all(), "李梅 3456")) == [mobile]
    assert list(customer_search(Customer.objects.all(), "张三 3456")) == []
