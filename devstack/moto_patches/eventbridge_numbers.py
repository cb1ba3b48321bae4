"""moto's EventBridge with exact numbers.

moto 5.2.5 parses each PutEvents entry's Detail with json.loads (numbers become floats) and writes
the event to an SQS target with json.dumps: a number with more than 17 significant digits came
out of the local bus changed. EventBridge takes Detail as JSON text ("PutEventsRequestEntry",
EventBridge API Reference) and documents no rounding, and the change events' numbers are exact
(docs/consumers.md). Here moto's events modules read and write JSON with the project's exact
codec (chalicelib/attributes.py: integers as ints, other numbers as Decimals, written back as
their text); rules match as before, Decimals comparing with the patterns' numbers by value
(tests/functional/test_history.py sends such numbers through the bus).
"""

from __future__ import annotations

import json
import types
from typing import Any

import moto.events.models as events_models
import moto.events.utils as events_utils

from chalicelib.attributes import dumps, loads


def _exact_dumps(value: Any, **options: Any) -> str:
    # moto calls json.dumps(value) without options; any other call keeps json's own.
    return json.dumps(value, **options) if options else dumps(value)


def _exact_loads(text: str | bytes, **options: Any) -> Any:
    return json.loads(text, **options) if options else loads(text)


EXACT_JSON = types.SimpleNamespace(loads=_exact_loads, dumps=_exact_dumps,
                                   JSONDecodeError=json.JSONDecodeError)

for _module in (events_models, events_utils):  # the bus, and the targets' input templates
    _module.json = EXACT_JSON  # type: ignore[attr-defined]  # their `import json`
