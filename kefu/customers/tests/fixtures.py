import pytest

from kefu.customers.tests.factories import make_customer


@pytest.fixture
def customer(db):
    return make_customer(name="张三", phone="13812341234", tags=["慢病"])
