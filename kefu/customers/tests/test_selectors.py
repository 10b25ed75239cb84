import pytest

from kefu.customers.selectors import (
    customer_list_for_display,
    customer_list_visible_to,
    customer_search,
)
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(agent):
    return {
        "zhang": make_customer(actor=agent, name="张三", phone="13812341234", tags=["慢病"]),
        "li": make_customer(actor=agent, name="李四", phone="13998765678", tags=["母婴"]),
        "shan": make_customer(actor=agent, name="單田芳", phone="13700001111"),
        "wang": make_customer(actor=agent, name="王小明", phone="13600002222"),
    }


def _search(user, query):
    return set(
        customer_search(customer_list_visible_to(user=user).live(), query).values_list(
            "name", flat=True
        )
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zs", {"张三"}),
        ("ZS", {"张三"}),
        ("zhangsan", {"张三"}),
        ("zhang", {"张三"}),
        ("张三", {"张三"}),
        ("張三", {"张三"}),  # Traditional characters in the query
        ("单田芳", {"單田芳"}),  # Simplified query finds a name stored in Traditional
        ("dtf", {"單田芳"}),
        ("stf", {"單田芳"}),  # 单 read as a surname (shàn) is indexed too
        ("1234", {"张三"}),  # phone tail
        ("5678", {"李四"}),
        ("139", {"李四"}),  # phone prefix
        ("慢病", {"张三"}),  # tag
        ("wxm", {"王小明"}),
        ("李", {"李四"}),
        ("小明", {"王小明"}),  # part of a name
        ("三", {"张三"}),
        ("-", {"张三", "李四", "單田芳", "王小明"}),  # nothing to search for: everyone
        ("nobody", set()),
    ],
)
def test_search_by_name_pinyin_initials_phone_and_tag(agent, people, query, expected):
    assert _search(agent, query) == expected


def test_search_by_customer_number(agent, people):
    number = people["li"].number
    assert _search(agent, number) == {"李四"}
    assert _search(agent, number.lower()) == {"李四"}


def test_search_follows_updates_merges_and_deletes(agent, records_officer, people):
    from kefu.customers import services

    services.customer_update(actor=agent, customer_id=people["li"].pk, data={"name": "李思思"})
    assert _search(agent, "lss") == {"李思思"}
    assert _search(agent, "ls") == {"李思思"}
    services.customer_merge(
        actor=records_officer, target_id=people["wang"].pk, duplicate_id=people["zhang"].pk
    )
    assert _search(agent, "1234") == {"王小明"}
    people["shan"].delete()
    assert _search(agent, "dtf") == set()


def test_search_terms_combine(agent, people):
    assert _search(agent, "z 1234") == {"张三"}
    assert _search(agent, "z 5678") == set()


def test_list_display_uses_a_fixed_number_of_queries(agent, people, django_assert_num_queries):
    rows = customer_list_for_display(customer_list_visible_to(user=agent).live())
    with django_assert_num_queries(3):  # customers + stores joined, tags, primary contacts
        for c in rows:
            _ = [t.name for t in c.tags.all()], [p.masked for p in c.primary_contacts], c.store
