import pytest

from kefu.accounts.tests.factories import StoreFactory, UserFactory


@pytest.fixture
def store(db):
    return StoreFactory(code="S001", name="人民路店")


@pytest.fixture
def other_store(db):
    return StoreFactory(code="S002", name="解放路店")


@pytest.fixture
def agent(db):
    return UserFactory(username="agent", role="agent")


@pytest.fixture
def records_officer(db):
    return UserFactory(username="records", role="records_officer")


@pytest.fixture
def manager(db):
    return UserFactory(username="manager", role="manager")


@pytest.fixture
def store_manager(db, store):
    return UserFactory(username="storemgr", role="store_manager", store=store)


@pytest.fixture
def handler(db):
    return UserFactory(username="handler", role="department_handler")


@pytest.fixture
def administrator(db):
    return UserFactory(username="admin", role="administrator")


@pytest.fixture
def users_by_role(agent, records_officer, manager):
    """The roles of the permission matrix, keyed by name; anonymous is None."""
    return {
        "anonymous": None,
        "agent": agent,
        "records_officer": records_officer,
        "manager": manager,
    }
