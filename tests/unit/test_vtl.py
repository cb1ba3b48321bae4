"""API Gateway mapping-template semantics of devstack.vtl ($util, $input, $context)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import pytest

from devstack.vtl import (
    dumps_compact,
    escape_javascript,
    json_path,
    loads_exact,
    new_context,
    override_status,
    render,
)

AWKWARD = "& + % = ? # ü 😀 \" ' \\ \n end"


def vtl(template: str, body: str = "{}", **context: Any) -> str:
    output, _ = render(template, body, new_context(**context))
    return output


# --- undefined references -------------------------------------------------------------------
@pytest.mark.parametrize("template", [
    "$nothing", "$!nothing", "${nothing}", "$context.nothing", "$context.error.nothing",
    "$input.path('$.missing')", "$util.nothing('x')", "$stageVariables.nothing",
])
def test_undefined_references_render_empty(template: str) -> None:
    assert vtl(f"[{template}]") == "[]"


def test_null_and_undefined_are_false_in_conditions() -> None:
    template = "#if($context.nothing)yes#{else}no#end/#if($input.path('$.a'))yes#{else}no#end"
    assert vtl(template, '{"a": null}') == "no/no"
    assert vtl(template, '{"a": 1}') == "no/yes"


# --- $util.urlEncode ------------------------------------------------------------------------
def test_url_encode_round_trips_awkward_text() -> None:
    encoded = vtl("$util.urlEncode($input.body)", AWKWARD)
    assert all(c.isalnum() or c in "%+-._*" for c in encoded)
    assert unquote_plus(encoded) == AWKWARD
    assert parse_qs(f"MessageBody={encoded}")["MessageBody"] == [AWKWARD]


@pytest.mark.parametrize(("text", "expected"), [
    ("a&b", "a%26b"), ("a+b", "a%2Bb"), ("100%", "100%25"), ("a=b", "a%3Db"),
    ("a?b", "a%3Fb"), ("a#b", "a%23b"), ("ü", "%C3%BC"), ("😀", "%F0%9F%98%80"),
    ('"', "%22"), ("'", "%27"), ("\\", "%5C"), ("\n", "%0A"), ("a b", "a+b"),
    # java.net.URLEncoder keeps "*" and encodes "~" (Python's quote_plus does the opposite).
    ("*", "*"), ("~", "%7E"), ("-._", "-._"),
])
def test_url_encode_is_java_url_encoder(text: str, expected: str) -> None:
    assert vtl("$util.urlEncode($input.path('$.t'))", json.dumps({"t": text})) == expected


def test_url_decode() -> None:
    assert vtl("$util.urlDecode('a%26b+c')") == "a&b c"


# --- $util.escapeJavaScript -----------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("it's", "it\\'s"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\slash", "back\\\\slash"),
    ("a/b", "a\\/b"),
    ("line\nnext\ttab\r", "line\\nnext\\ttab\\r"),
    ("\x01", "\\u0001"),
    ("ü", "\\u00FC"),
    ("😀", "\\uD83D\\uDE00"),  # UTF-16 surrogates, as Java strings hold it
    ("plain & + % = ? #", "plain & + % = ? #"),
])
def test_escape_javascript_is_commons_lang(text: str, expected: str) -> None:
    assert escape_javascript(text) == expected
    assert vtl("$util.escapeJavaScript($input.path('$.t'))", json.dumps({"t": text})) == expected


def test_escape_javascript_output_is_a_json_string_once_quotes_are_unescaped() -> None:
    escaped = escape_javascript(AWKWARD).replace("\\'", "'")
    assert json.loads(f'"{escaped}"') == AWKWARD


# --- $util.base64 / parseJson ---------------------------------------------------------------
def test_base64_round_trip() -> None:
    assert vtl("$util.base64Encode('hé 😀')") == "aMOpIPCfmIA="
    assert vtl("$util.base64Decode('aMOpIPCfmIA=')") == "hé 😀"


def test_parse_json_gives_objects_with_dot_access() -> None:
    body = json.dumps({"s": json.dumps({"k": {"n": 7}})})
    assert vtl("#set($o = $util.parseJson($input.path('$.s')))$o.k.n", body) == "7"


# --- $input ---------------------------------------------------------------------------------
def test_input_body_is_the_raw_body() -> None:
    body = '{"b": 0.10, "a": 12345678901234567890}'
    assert vtl("$input.body", body) == body
    assert vtl("$input.body", "") == "{}"


def test_input_json_keeps_numbers_exact() -> None:
    body = '{"x": {"f": 0.1, "big": 12345678901234567890, "s": "ü"}}'
    assert vtl("$input.json('$.x')", body) == '{"f":0.1,"big":12345678901234567890,"s":"ü"}'
    assert vtl("$input.json('$')", '{"a": [1, 2]}') == '{"a":[1,2]}'
    assert vtl("$input.json('$.missing')", "{}") == "null"


def test_input_path_values() -> None:
    body = '{"a": {"b": [1, 2, {"c": "d"}]}, "s": "text", "n": 0.1}'
    assert vtl("$input.path('$.s')", body) == "text"
    assert vtl("$input.path('$.n')", body) == "0.1"
    assert vtl("$input.path('$.a.b').size()", body) == "3"
    assert vtl("$input.path('$.a.b[2].c')", body) == "d"
    assert vtl("$input.path('$.a')", body) == '{b=[1,2,{"c":"d"}]}'  # a Java map's toString
    assert vtl("$input.path('$.a').b[0]", body) == "1"
    assert vtl("#foreach($x in $input.path('$.a.b[0:2]'))$x;#end", body) == "1;2;"


def test_input_params() -> None:
    params = {"path": {"id": "p"}, "querystring": {"q": "1"}, "header": {"X-H": "h"}}
    output, _ = render("$input.params('id')|$input.params('q')|$input.params('X-H')|"
                       "$input.params('none')|$input.params().header.get('X-H')", "{}",
                       new_context(), params)
    assert output == "p|1|h||h"


def test_json_path_definite_and_indefinite() -> None:
    document = {"a": [{"b": 1}, {"b": 2}]}
    assert json_path(document, "$.a[0].b") == 1
    assert json_path(document, "$.a[*].b") == [1, 2]
    assert json_path(document, "$.nothing") is None


# --- $context -------------------------------------------------------------------------------
def test_context_variables() -> None:
    context = new_context(requestId="r-1", requestTimeEpoch=1700000000123, stage="local",
                          httpMethod="POST", resourcePath="/SQSManager")
    output, _ = render("$context.requestId $context.requestTimeEpoch $context.stage "
                       "$context.httpMethod $context.resourcePath", "{}", context)
    assert output == "r-1 1700000000123 local POST /SQSManager"


def test_response_override_status() -> None:
    template = "#set($context.responseOverride.status = 413){}"
    output, context = render(template, "{}", new_context())
    assert output == "{}"
    assert override_status(context, 400) == 413
    assert override_status(new_context(), 400) == 400


def test_render_does_not_mutate_the_callers_context() -> None:
    context = new_context()
    render("#set($context.responseOverride.status = 500)", "{}", context)
    assert context["responseOverride"]["status"] is None


# --- exact JSON helpers ---------------------------------------------------------------------
def test_loads_and_dumps_exact() -> None:
    text = '{"f":0.1,"big":12345678901234567890,"e":1E+2,"t":true,"n":null,"s":"ü\\""}'
    value = loads_exact(text)
    assert value["f"] == Decimal("0.1")
    assert value["big"] == 12345678901234567890
    assert loads_exact(dumps_compact(value)) == value
