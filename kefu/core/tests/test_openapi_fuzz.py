"""Schemathesis against the live API: every operation of /api/v1/openapi.json, called over HTTP
on the ASGI app served by uvicorn, with requests generated from the document itself.

Each operation gets a bounded number of examples (valid ones, and invalid ones that must be
refused), seeded so that CI sees the same requests every run. The pass fails on any 5xx, any
status code, content type or body the document does not declare, any invalid request that is
accepted, and any operation that answers without credentials.

The data is a small demo department, so lists have rows and path parameters name real records
most of the time (`_real_ids`). The callers: a superuser, so every operation is reachable; an
agent of the demo, for refusals and what an agent sees; and nobody, who must get 401 everywhere.
Failures are collected over all operations and reported together, each with a curl command.
"""

import time
from collections import defaultdict
from io import StringIO

import hypothesis
import pytest
import requests
import schemathesis
from django.core.management import call_command
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from kefu.accounts.models import User
from kefu.accounts.services import api_token_create

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 10  # per operation: valid requests, and as many invalid ones
AGENT_EXAMPLES = 5  # per operation, valid requests of an agent (403s, their own records)
REQUEST_TIMEOUT = 30  # seconds, one request
TIME_BUDGET = 600  # seconds, the whole pass; CI's load varies, the count of examples does not
DEMO = {"customers": 300, "tickets": 30, "seed": 1}

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _real_ids() -> dict[str, list[int]]:
    """Ids of records the demo holds, by the name of the path parameter that takes them."""
    from kefu.appointments.models import Appointment
    from kefu.campaigns.models import Campaign, MessageTemplate, Segment
    from kefu.conversations.models import Conversation, QuickReply
    from kefu.customers.models import ContactPoint, Customer
    from kefu.followups.models import FollowUp
    from kefu.notifications.models import Notification
    from kefu.tickets.models import Ticket, TicketAttachment

    def ids(model, limit: int = 5) -> list[int]:
        return list(model.objects.order_by("pk").values_list("pk", flat=True)[:limit])

    return {
        "appointment_id": ids(Appointment),
        "campaign_id": ids(Campaign),
        "template_id": ids(MessageTemplate),
        "segment_id": ids(Segment),
        "conversation_id": ids(Conversation),
        "reply_id": ids(QuickReply),
        "customer_id": ids(Customer),
        "contact_id": ids(ContactPoint),
        "followup_id": ids(FollowUp),
        "notification_id": ids(Notification),
        "ticket_id": ids(Ticket),
        "attachment_id": ids(TicketAttachment),
    }


def _schema(document: dict, key: str, real: dict[str, list[int]]):
    """The document loaded for schemathesis, calling as the holder of `key`."""
    # The token goes in as the document's bearer scheme, so that schemathesis leaves it out
    # when a negative example breaks the Authorization header on purpose.
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"TokenAuth": {"bearer": key}}}})
    schema = schemathesis.openapi.from_dict(document, config=config)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        # Mostly a real record, sometimes the generated (unknown) id; a value a negative
        # example made invalid (not an integer) stays as it is.
        if not path_parameters:
            return st.just(path_parameters)
        choices = {
            name: st.sampled_from([*real[name], value])
            if real.get(name) and type(value) is int
            else st.just(value)
            for name, value in path_parameters.items()
        }
        return st.fixed_dictionaries(choices)

    return schema


def _operations(schema) -> dict:
    return {result.ok().label: result.ok() for result in schema.get_all_operations()}


def _run(operation, *, mode, checks, examples, failures, run_as, call) -> None:
    """`examples` cases of the operation; a failed check is recorded with its curl command."""

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,  # the same examples every run
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking: bounded
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        call(case, checks)

    try:
        run()
    except (Exception, FailureGroup) as exc:
        failures[operation.label].append(f"[{run_as}, {mode.value}] {exc}")


def test_every_operation_keeps_to_the_openapi_document(asgi_server):
    # given: a department with records, the document, and three callers: a superuser who may
    # do everything, an agent who may do some of it, and nobody
    call_command("demo", stdout=StringIO(), **DEMO)
    boss = User.objects.create_superuser("fuzz-boss", password="x", role="manager")
    _token, boss_key = api_token_create(user=boss, name="schemathesis", actor=None)
    agent = User.objects.get(username="agent01")
    _token, agent_key = api_token_create(user=agent, name="schemathesis", actor=None)
    response = requests.get(f"{asgi_server.url}/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    document = response.json()
    real = _real_ids()
    as_boss = _operations(_schema(document, boss_key, real))
    as_agent = _operations(_schema(document, agent_key, real))
    as_nobody = _operations(schemathesis.openapi.from_dict(document))
    assert len(as_boss) > 80
    base_url = asgi_server.url  # the paths start with /api/v1
    deadline = time.monotonic() + TIME_BUDGET

    def call(case, checks):
        if time.monotonic() < deadline:
            case.call_and_validate(base_url=base_url, checks=checks, timeout=REQUEST_TIMEOUT)

    def call_anonymously(case, checks):
        response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT)
        case.validate_response(response, checks=checks)
        assert response.status_code == 401, f"{response.status_code} without credentials"

    failures: dict[str, list[str]] = defaultdict(list)
    # when
    for label, operation in as_boss.items():
        common = {"failures": failures, "call": call}
        _run(
            operation, mode=POSITIVE, checks=CHECKS, examples=MAX_EXAMPLES, run_as="boss", **common
        )
        _run(
            operation,
            mode=NEGATIVE,
            checks=[*CHECKS, negative_data_rejection],
            examples=MAX_EXAMPLES,
            run_as="boss",
            **common,
        )
        _run(
            as_agent[label],
            mode=POSITIVE,
            checks=CHECKS,
            examples=AGENT_EXAMPLES,
            run_as="agent01",
            **common,
        )
        _run(
            as_nobody[label],
            mode=POSITIVE,
            checks=[not_a_server_error, status_code_conformance],
            examples=1,
            run_as="nobody",
            failures=failures,
            call=call_anonymously,
        )
    # then
    assert time.monotonic() <= deadline, f"the pass took longer than {TIME_BUDGET} s"
    report = "\n\n".join(f"== {label}\n" + "\n".join(found) for label, found in failures.items())
    assert not failures, f"{len(failures)} operations break the document:\n\n{report}"
