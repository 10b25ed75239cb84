"""Schemas every router shares: the error body, a reference to a named record, and the base of
request bodies.

The OpenAPI document names each schema by its class, one namespace for the whole API: two classes
of the same name in two apps would publish one of them for both. So a shape used across apps is
defined once here (or in the app that owns the record, like customers.api.CustomerRef), and an
app's own variant gets a name of its own (AppointmentCustomer, TicketEventOut).
"""

from typing import Any

from ninja import Schema
from ninja.schema import DjangoGetter
from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


class ErrorOut(Schema):
    """What every refusal answers: a code to branch on, a message to show, and for invalid input
    the messages of each field (`errors`). Some codes add details of their own (the customer
    already holding a phone number, say), hence further properties."""

    code: str = Field(description="invalid, not_found, permission_denied, conflict, ... ")
    message: str = Field(description="In the language of the request (Accept-Language).")
    errors: dict[str, list[str]] = Field(
        description="Messages by field (`__all__`: the body as a whole); empty when none."
    )

    model_config = ConfigDict(extra="allow")


class Ref(Schema):
    """A record named by its id and what people call it: a user, a queue, a store."""

    id: int
    name: str


class InputSchema(Schema):
    """A request body: a JSON object with the declared properties and no others. `true`, a list
    or a misspelt property is refused (422) rather than read as an empty body with defaults."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        # ninja validates twice: the raw value, then the same wrapped in a DjangoGetter.
        if isinstance(data, dict | DjangoGetter):
            return data
        raise PydanticCustomError("model_type", "Input should be an object")
