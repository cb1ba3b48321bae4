"""API Gateway mapping templates (VTL) rendered locally with airspeed-ext.

Mirrors API Gateway's `$input`, `$util`, `$context` and `$stageVariables` closely enough that the
very templates in infra/extension.yaml can be exercised offline. Modelled on LocalStack's
`template_mapping.py` (VelocityInput / VelocityUtilApiGateway), with two differences where the
AWS docs are explicit: `escapeJavaScript` escapes `'` as `\\'`, and `urlEncode` is
`java.net.URLEncoder` exactly (leaves `*`, encodes `~`).
"""

from __future__ import annotations

import base64
import copy
import re
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import airspeed
import airspeed.operators as vtl_ops
from jsonpath_ng.ext import parse as jsonpath_parse

from chalicelib.attributes import dumps, loads


def _condition(self: Any, namespace: Any, loader: Any) -> bool:
    # airspeed-ext treats a null condition as true; Velocity (and API Gateway) treat it as false.
    result = self.expression.calculate(namespace, loader)
    return bool(result) if result is not None else False


vtl_ops.Condition.calculate = _condition


class JsonNumber(Decimal):
    """A JSON number kept exactly as written (0.1 stays 0.1, big integers stay whole)."""


def loads_exact(text: str) -> Any:
    """chalicelib's exact JSON parser (refuses NaN, Infinity and absurd nesting, as API Gateway
    does), with numbers that VTL prints as written."""
    return loads(text, parse_float=JsonNumber)


def dumps_compact(value: Any) -> str:
    """Compact JSON (like API Gateway's `$input.json`), with exact numbers."""
    return dumps(value, separators=(",", ":"))


def _java_string(value: Any) -> str:
    """How Velocity prints a value: maps as {k=v}, lists of objects as JSON (as API Gateway)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return dumps_compact(value)
    return str(value)


class VtlMap(dict[str, Any]):
    """A JSON object returned by `$input.path`: dot access works, prints like a Java map."""

    def __str__(self) -> str:
        return _java_string(self)


class VtlList(list[Any]):
    def __str__(self) -> str:
        return dumps_compact(self)


def _to_vtl(value: Any) -> Any:
    if isinstance(value, Mapping):
        return VtlMap({k: _to_vtl(v) for k, v in value.items()})
    if isinstance(value, list):
        return VtlList(_to_vtl(v) for v in value)
    return value


# airspeed looks up Java-style helper methods (.size(), .get(), ...) by exact type.
vtl_ops.__additional_methods__[VtlMap] = vtl_ops.__additional_methods__[dict]
vtl_ops.__additional_methods__[VtlList] = vtl_ops.__additional_methods__[list]

_INDEFINITE = re.compile(r"\*|\.\.|\[\?|\[[^\]]*[,:]")

# Parsing is most of a render's cost (a JSONPath about 13 ms, the two templates of a request about
# 11 ms), and the same few templates and paths come back on every request: each gateway thread
# keeps what it parsed (per thread: airspeed's trees are not documented as thread-safe).
_PARSED = threading.local()
_MAX_CACHED = 256


def _cached(kind: str, source: str, build: Callable[[str], Any]) -> Any:
    cache: dict[str, Any] = _PARSED.__dict__.setdefault(kind, {})
    found = cache.get(source)
    if found is None:
        if len(cache) >= _MAX_CACHED:
            cache.clear()
        found = cache[source] = build(source)
    return found


def json_path(document: Any, path: str) -> Any:
    """JSONPath as API Gateway uses it: a definite path gives one value (or null), else a list."""
    parsed = _cached("jsonpath", path or "$", jsonpath_parse)
    matches = [match.value for match in parsed.find(document)]
    if _INDEFINITE.search(path or "$"):
        return matches
    return matches[0] if matches else None


class VtlInput:
    """`$input`: the request (or integration response) payload and the request parameters."""

    def __init__(self, body: str, params: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._body = body
        self._params = {"path": {}, "querystring": {}, "header": {}, **(params or {})}
        self._document: Any = None
        self._parsed = False

    def _parsed_body(self) -> Any:
        if not self._parsed:
            self._document = loads_exact(self._body) if self._body.strip() else {}
            self._parsed = True
        return self._document

    @property
    def body(self) -> str:
        # API Gateway hands an empty payload to templates as "{}".
        return self._body if self._body else "{}"

    def json(self, path: str = "$") -> str:
        return dumps_compact(json_path(self._parsed_body(), path))

    def path(self, path: str) -> Any:
        return _to_vtl(json_path(self._parsed_body(), path))

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return _to_vtl(self._params)
        for where in ("path", "querystring", "header"):
            section = self._params.get(where, {})
            if name in section:
                return section[name]
        return ""


def escape_javascript(value: Any) -> str:
    """Apache Commons Lang `StringEscapeUtils.escapeJavaScript`, which API Gateway uses."""
    if value is None:
        return ""
    text = _java_string(value) if not isinstance(value, str) else value
    out: list[str] = []
    utf16 = text.encode("utf-16-be")
    for i in range(0, len(utf16), 2):
        code = int.from_bytes(utf16[i:i + 2], "big")
        char = chr(code)
        if code > 0x7F:
            out.append(f"\\u{code:04X}")
        elif char in _JS_ESCAPES:
            out.append(_JS_ESCAPES[char])
        elif code < 0x20:
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


_JS_ESCAPES = {"\b": "\\b", "\n": "\\n", "\t": "\\t", "\f": "\\f", "\r": "\\r",
               "'": "\\'", '"': '\\"', "\\": "\\\\", "/": "\\/"}


class VtlUtil:
    """`$util` as documented for API Gateway mapping templates."""

    def escapeJavaScript(self, value: Any) -> str:
        return escape_javascript(value)

    def urlEncode(self, value: Any) -> str:
        # java.net.URLEncoder (UTF-8): like quote_plus, but keeps "*" and encodes "~".
        return quote_plus(_java_string(value), safe="*").replace("~", "%7E")

    def urlDecode(self, value: Any) -> str:
        return unquote_plus(_java_string(value))

    def base64Encode(self, value: Any) -> str:
        return base64.b64encode(_java_string(value).encode("utf-8")).decode("ascii")

    def base64Decode(self, value: Any) -> str:
        return base64.b64decode(_java_string(value)).decode("utf-8")

    def parseJson(self, value: Any) -> Any:
        return _to_vtl(loads_exact(_java_string(value)))


def new_context(**values: Any) -> dict[str, Any]:
    """A `$context` with the keys a template may set (`responseOverride`, `requestOverride`)."""
    context: dict[str, Any] = {
        "responseOverride": {"status": None, "header": {}},
        "requestOverride": {"header": {}, "path": {}, "querystring": {}},
        "error": {},
        "identity": {},
    }
    context.update(values)
    return context


def render(template: str, body: str, context: Mapping[str, Any],
           params: Mapping[str, Mapping[str, str]] | None = None,
           stage_variables: Mapping[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """Render `template`; returns the output and the (possibly modified) `$context`."""
    context_copy = copy.deepcopy(dict(context))
    namespace = {
        "input": VtlInput(body, params),
        "util": VtlUtil(),
        "context": context_copy,
        "stageVariables": dict(stage_variables or {}),
    }
    output: str = _cached("template", template, airspeed.Template).merge(namespace)
    return output, context_copy


def override_status(context: Mapping[str, Any], default: int) -> int:
    """The status a template chose with `#set($context.responseOverride.status = N)`."""
    status = (context.get("responseOverride") or {}).get("status")
    try:
        return int(status) if status not in (None, "") else default
    except (TypeError, ValueError):
        return default
