"""Seeded generator of bad POST /SQSManager requests, each with its verdict from the independent
judge (tests/bad_request_judge.py).

Each request starts from a valid command and is broken one way: invalid JSON, wrong types,
missing or extra fields, constraint violations, content types, encodings, duplicate keys, odd
numbers, deep nesting, and a few huge bodies.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Iterator
from typing import Any

from tests.bad_request_judge import (
    API_GATEWAY_PAYLOAD_LIMIT,
    BAD,
    JSON,
    MIB,
    NO_CONTENT_TYPE,
    Request,
    contract_verdict,
)

# -- building blocks ---------------------------------------------------------------------------
BASES: list[dict[str, Any]] = [
    {"operation": "create", "id": "a1", "item": {"name": "first", "n": 1}},
    {"operation": "put", "id": "b2", "item": {"tags": ["x", "y"], "price": 0.1}},
    {"operation": "update", "id": "c3", "item": {"x": 1, "y": None}, "expectedVersion": 2},
    {"operation": "delete", "id": "d4"},
    {"operation": "read", "id": "e5"},
]
WRONG_VALUES: list[Any] = [0, -1, 1.5, True, False, None, [], {}, "", "x", [1, 2], {"a": 1},
                           "1", 10**30, -0.0]
BAD_CONTENT_TYPES = [
    "text/plain", "application/xml", "text/json", "application/jsonp", "application/json-seq",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "*/*",
    "application/*", "json", "application/javascript", "application/x-json", "text/html",
    "application/octet-stream", "application/problem+json", "application/vnd.api+json",
    "application/json-patch+json", "x", ";", "application/ json",
]
# Content types the contract treats as JSON: the body decides.
JSON_CONTENT_TYPES = [JSON, NO_CONTENT_TYPE, "Application/JSON", "application/json; charset=utf-8",
                      "application/json;charset=UTF-16", "application/json; foo=bar",
                      "application/json ", "application/json;"]
ODD_NUMBERS = ["1e9999999999999999999", "-1e9999999999999999999", "NaN", "Infinity",
               "-Infinity", "1e400", "1E-400", "0x10", "01", "+1", ".5", "1.", "-", "1e", "--1",
               "1_000", "12345678901234567890123456789012345678901234567890", "-0", "1e-0",
               "9" * 400, "0." + "0" * 300 + "1"]
INVALID_UTF8 = [b"\x80", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80",
                b"\xfe\xfe", b"\xc3"]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _random_text(rng: random.Random, size: int) -> str:
    alphabet = string.ascii_letters + string.digits + " _-./\\\"'{}[]:,üé😀\u2028\t"
    return "".join(rng.choice(alphabet) for _ in range(size))


def _base(rng: random.Random) -> dict[str, Any]:
    return json.loads(json.dumps(rng.choice(BASES)))  # a fresh copy


# -- mutators: each returns one request ----------------------------------------------------------
def invalid_json(rng: random.Random) -> Request:
    text = _dumps(_base(rng))
    at = rng.randrange(len(text))
    broken = rng.choice([
        text[:at],  # truncated
        text[:at] + text[at + 1:],  # one character gone
        text[:at] + rng.choice('{}[],:"\\\'') + text[at:],
        text.replace('"', "'"),
        text[:-1] + ",}",
        text + rng.choice(["x", "}", "{}", " 1", "\x00", "//c"]),
        "/* c */" + text,
        text.replace('"operation"', "operation"),
        _random_text(rng, rng.randrange(1, 80)),
    ])
    return Request("invalid JSON", broken.encode("utf-8"))


def random_bytes(rng: random.Random) -> Request:
    return Request("random bytes", rng.randbytes(rng.randrange(0, 300)))


def wrong_type(rng: random.Random) -> Request:
    command = _base(rng)
    command[rng.choice(["operation", "id", "item", "expectedVersion"])] = rng.choice(WRONG_VALUES)
    return Request("wrong type", _dumps(command).encode("utf-8"))


def not_an_object(rng: random.Random) -> Request:
    value = rng.choice([*WRONG_VALUES, [_base(rng)], [_base(rng), _base(rng)]])
    return Request("not an object", _dumps(value).encode("utf-8"))


def missing_field(rng: random.Random) -> Request:
    command = _base(rng)
    for name in rng.sample(sorted(command), rng.randrange(1, len(command) + 1)):
        del command[name]
    return Request("missing field", _dumps(command).encode("utf-8"))


def extra_field(rng: random.Random) -> Request:
    command = _base(rng)
    name = rng.choice(["extra", "", "Operation", "ID", "item ", "__proto__", "$ref",
                       _random_text(rng, rng.randrange(1, 40)), "x" * 5000])
    command[name] = rng.choice(WRONG_VALUES)
    return Request("extra field", _dumps(command).encode("utf-8"))


def broken_constraint(rng: random.Random) -> Request:
    command = _base(rng)
    choice = rng.randrange(9)
    if choice == 0:
        command["id"] = ""
    elif choice == 1:
        command["id"] = "i" * rng.choice([256, 257, 1000, 70000])
    elif choice == 2:
        command["expectedVersion"] = rng.choice([-1, -(10**20), 0.5, "0", None])
    elif choice == 3:
        command.update(operation="update", item={})
    elif choice == 4:
        command.update(operation="update", item={f"a{i}": i for i in range(101)})
    elif choice == 5:
        command.update(operation=rng.choice(["create", "put", "update"]),
                       item={rng.choice(["id", "version"]): 1})
    elif choice == 6:
        command.update(operation="read", item={"a": 1})
    elif choice == 7:
        command.update(operation=rng.choice(["delete", "read"]), item={"a": 1}, expectedVersion=1)
    else:
        command["operation"] = rng.choice(["CREATE", " create", "create\u0000", "explode", "",
                                           "delete ", "Read", "reads"])
    return Request("broken constraint", _dumps(command).encode("utf-8"))


def content_type(rng: random.Random) -> Request:
    body = _dumps(_base(rng)).encode("utf-8")
    if rng.random() < 0.8:
        return Request("wrong content type", body, rng.choice(BAD_CONTENT_TYPES))
    # A JSON content type, but a body that breaks the schema.
    return Request("odd JSON content type", b'{"operation": "explode", "id": "x"}',
                   rng.choice(JSON_CONTENT_TYPES))


def odd_encoding(rng: random.Random) -> Request:
    command = _base(rng)
    text = _dumps(command)
    choice = rng.randrange(10)
    if choice == 0:
        body = text.encode(rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]))
    elif choice == 1:
        body = b"\xef\xbb\xbf" + text.encode("utf-8")  # UTF-8 BOM
    elif choice == 2:
        body = _dumps({**command, "id": "züri"}).encode("latin-1")
    elif choice == 3:  # an invalid byte sequence inside a string
        at = text.index('"', text.index('"id"') + 5) + 1
        body = text[:at].encode() + rng.choice(INVALID_UTF8) + text[at:].encode()
    elif choice == 4:  # a raw NUL (a control character: invalid inside a JSON string)
        body = text.replace('"id": "', '"id": "\x00', 1).encode("utf-8")
    elif choice == 5:  # NUL between tokens
        body = text.replace(", ", ",\x00", 1).encode("utf-8")
    elif choice == 6:  # valid JSON with an escaped NUL, but an extra field
        body = (text[:-1] + ', "n\\u0000": 1}').encode("utf-8")
    elif choice == 7:  # lone and reversed surrogate escapes, in a body broken elsewhere
        body = (b'{"operation": "create", "id": "\\ud83d", "item": {"a": "\\ude00\\ud83d"}, '
                b'"bad": 1}')
    elif choice == 8:  # UTF-8 encoded surrogate (invalid in UTF-8)
        body = text.encode("utf-8").replace(b'"id": "', b'"id": "\xed\xb0\x80', 1)
    else:  # another charset declared, UTF-16 sent
        return Request("odd encoding", text.encode("utf-16"), JSON + "; charset=utf-16")
    return Request("odd encoding", body)


def duplicate_keys(rng: random.Random) -> Request:
    command = _base(rng)
    name = rng.choice(sorted(command))
    # The last one wins in Python's json and in the gateway: make the last one wrong.
    first = _dumps(command[name])
    last = _dumps(rng.choice(WRONG_VALUES))
    body = '{"%s": %s, %s, "%s": %s}' % (name, first, _dumps(command)[1:-1], name, last)
    return Request("duplicate keys", body.encode("utf-8"))


def odd_number(rng: random.Random) -> Request:
    command = _base(rng)
    number = rng.choice(ODD_NUMBERS)
    where = rng.choice(["expectedVersion", "id", "operation", "top"])
    if where == "top":
        return Request("odd number", number.encode("ascii"))
    body = _dumps({**command, where: "@N@"}).replace('"@N@"', number)
    return Request("odd number", body.encode("utf-8"))


def deep_nesting(rng: random.Random) -> Request:
    depth = rng.choice([100, 500, 2000, 10_000, 100_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    nested = opener * depth + "1" + closer * depth
    # At the top level, as the value of a field that may not hold it, or in an item (valid by
    # the schema: the gateway queues what it can parse, the consumer rejects it).
    where = rng.choice(["top", "id", "expectedVersion", "extra", "item"])
    if where == "top":
        body = nested
    elif where == "item":
        body = '{"operation": "put", "id": "deep", "item": {"a": %s}}' % nested
    else:
        body = _dumps({"operation": "delete", "id": "x", where: "@N@"}).replace('"@N@"', nested)
    return Request("deep nesting", body.encode("utf-8"))


ODD_QUERIES = ["?", "?%", "?a=%ff", "?a=%zz&&&=", "?" + "q=1&" * 2000, "?x=\u00fc", "?;", "#f",
               "?a=1#frag", "?%00=%00"]
ODD_HEADERS = [
    {"x-amzn-RequestId": "not-a-uuid"}, {"x-amzn-RequestId": "0" * 5000},
    {"x-amzn-RequestId": "12345678-90ab-4cde-8f01-23456789abcd"},
    {"Accept": "application/xml"}, {"Accept": "*/*;q=0, x/y"}, {"Content-Encoding": "gzip"},
    {"Content-Encoding": "br, deflate"}, {"X-Long": "v" * 60_000}, {"Host": ""},
    {"User-Agent": "\u00e9\u00fc\u00ff"}, {"x-api-key": "\u00ff" * 10},
    {f"X-H{i}": str(i) for i in range(90)},
]


def odd_request_line_or_headers(rng: random.Random) -> Request:
    """A request broken elsewhere (the body decides), with odd query strings and headers that
    must not turn it into a 5xx."""
    broken = rng.choice([invalid_json, wrong_type, missing_field, content_type])(rng)
    return Request("odd query or headers", broken.body, broken.content_type,
                   extra_headers=rng.choice(ODD_HEADERS), query=rng.choice(ODD_QUERIES))


MUTATORS: list[tuple[Callable[[random.Random], Request], int]] = [
    (invalid_json, 14), (random_bytes, 4), (wrong_type, 12), (not_an_object, 4),
    (missing_field, 8), (extra_field, 8), (broken_constraint, 14), (content_type, 10),
    (odd_encoding, 10), (duplicate_keys, 6), (odd_number, 8), (deep_nesting, 2),
    (odd_request_line_or_headers, 6),
]


def huge_requests() -> list[Request]:
    """Around SQS's 1 MiB message limit and API Gateway's 10 MB payload limit (slow: few)."""

    def padded(size: int, valid: bool = True) -> bytes:
        head = '{"operation": "put", "id": "big", "item": {"s": "'
        tail = '"}}' if valid else '"}'
        return (head + "x" * (size - len(head) - len(tail)) + tail).encode("ascii")

    return [
        Request("huge", padded(MIB + 1)),  # valid JSON over SQS's limit: 413
        Request("huge", padded(2 * MIB, valid=False)),
        Request("huge", padded(API_GATEWAY_PAYLOAD_LIMIT + 1)),
        Request("huge", padded(API_GATEWAY_PAYLOAD_LIMIT + 1, valid=False), "text/plain"),
        Request("huge", b"[" * (3 * MIB)),
    ]


def generate(bad_count: int, seed: int) -> Iterator[tuple[Request, str]]:
    """Requests with their verdicts, until `bad_count` of them are BAD (the huge ones first)."""
    rng = random.Random(seed)
    mutators, weights = zip(*MUTATORS, strict=True)
    produced = 0
    candidates = iter(huge_requests())
    while produced < bad_count:
        request = next(candidates, None) or rng.choices(mutators, weights)[0](rng)
        verdict = contract_verdict(request)
        produced += verdict == BAD
        yield request, verdict
