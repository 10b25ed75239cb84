import pytest

from kefu.customers.tests.factories import make_customer


@pytest.fixture
def customer(db):
    return make_customer(name="张三", phone="13812341234", tags=["慢病"])


@pytest.fixture
def duplicate(agent):
    """A second 张三 with another phone: a likely duplicate of `customer`."""
    return make_customer(actor=agent, name="张三", phone="13900009999")
