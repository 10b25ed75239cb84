"""Each app mounts its own router on the one API (kefu.core.api names none of them), and the
accounts app installs its authentication."""

from kefu.core.api import api, api_router_add


def _prefixes() -> list[str]:
    return [prefix for prefix, _router in api._routers]


def test_every_app_mounts_its_router_once():
    prefixes = [p for p in _prefixes() if p.count("/") <= 1]  # nested routers have longer ones

    assert sorted(prefixes) == sorted(
        [
            "",  # ninja's default router, with no operations
            "/accounts",
            "/customers",
            "/notifications",
            "/jobs",
            "/tickets",
            "/followups",
            "/conversations",
            "/campaigns",
            "/appointments",
        ]
    )


def test_mounting_a_router_again_changes_nothing():
    """Django may run an app's ready() twice; the router stays mounted once."""
    from kefu.tickets.api import router

    before = list(api._router_registrations)

    api_router_add("/tickets", router)

    assert api._router_registrations == before


def test_every_operation_takes_an_api_token_or_the_page_session():
    document = api.get_openapi_schema(path_prefix="/api/v1/")

    operations = [op for methods in document["paths"].values() for op in methods.values()]
    assert len(operations) > 50
    for operation in operations:
        assert operation["security"] == [{"TokenAuth": []}, {"SessionAuth": []}], operation
    assert set(document["components"]["securitySchemes"]) == {"TokenAuth", "SessionAuth"}
