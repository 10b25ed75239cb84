"""Reading a JSON request body: the one loader for the API, the chat widget and the webhooks.

`json.loads` recurses once per level of nesting, so a body of a hundred thousand `[` raises
RecursionError (a 500) instead of a clear refusal, and a body just below the recursion limit
parses but crashes whatever walks it next. This loader measures the nesting first, in one linear
pass that stops at the first level too deep, and refuses what is not standard JSON (NaN,
Infinity), so every caller gets a value or a `JsonBodyInvalid` (400, in the API's error shape).
"""

import json
import re
from typing import Any

from django.utils.translation import gettext as _

from kefu.core.exceptions import DomainError

# Levels of arrays and objects inside each other. Kefu's own bodies nest three or four deep (a
# segment's filters: an object of lists); 32 leaves room for any integration's extra data.
JSON_MAX_DEPTH = 32

# A whole string (its brackets do not count), a bracket, or a quote that opens no complete
# string (the body is not JSON then). Matching strings whole keeps the scan linear.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|"', re.DOTALL)
_OPEN = frozenset(b"[{")


class JsonBodyInvalid(DomainError):
    """The body is not JSON, or nests deeper than JSON_MAX_DEPTH."""

    code = "bad_request"
    status = 400


def json_depth_exceeds(raw: bytes, max_depth: int = JSON_MAX_DEPTH) -> bool:
    """True when arrays and objects in `raw` nest deeper than `max_depth`. For JSON only: what
    is not JSON may answer either way, and json.loads refuses it afterwards."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # too few brackets to nest that deep: nearly every body stops here
    depth = 0
    for match in _TOKEN.finditer(raw):
        token = match.group()
        if len(token) != 1:
            continue  # a string
        char = token[0]
        if char in _OPEN:
            depth += 1
            if depth > max_depth:
                return True
        elif char == ord('"'):
            return False  # an unterminated string: not JSON
        else:
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def json_body_load(raw: bytes | str, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """The value of a JSON document, or JsonBodyInvalid naming what is wrong with it."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if json_depth_exceeds(data, max_depth):
        raise JsonBodyInvalid(
            _("The request body nests more than %(depth)s levels deep.") % {"depth": max_depth}
        )
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise JsonBodyInvalid(_("The request body is not valid JSON.")) from None
