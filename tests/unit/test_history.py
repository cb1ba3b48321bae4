"""chalicelib/history.py's pure parts, without I/O: cursors and reading the bus's envelope (the
store itself runs against both stores in tests/functional/test_history.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.errors import InvalidCommandError, InvalidQueryError
from chalicelib.history import HistoryStore, decode_cursor, encode_cursor, event_of_message


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    assert decode_cursor(encode_cursor(12345678901234567890)) == 12345678901234567890
    for bad in ("", "nope", encode_cursor(1)[:-1] + "!", "dmE"):  # "dmE" is base64 of "va"
        with pytest.raises(InvalidQueryError):
            decode_cursor(bad)


def test_the_event_is_the_envelopes_detail_with_exact_numbers() -> None:
    body = '{"version": "0", "detail-type": "item.created", "detail": {"id": "a", "version": 1, '\
           '"new": {"n": 0.10000000000000000000000000000000000001}}}'
    event = event_of_message(body)
    assert event["new"]["n"] == Decimal("0.10000000000000000000000000000000000001")
    for bad in ("not json", '{"no": "detail"}', '{"detail": [1]}'):
        with pytest.raises(InvalidCommandError):
            event_of_message(bad)


@pytest.mark.parametrize("event", [{"id": "a"}, {"id": 1, "version": 1},
                                   {"id": "a", "version": True}, {"id": "a", "version": "1"}])
def test_what_is_not_a_change_event_is_refused_before_any_call(event: dict[str, object]) -> None:
    with pytest.raises(InvalidCommandError):
        HistoryStore(client=None, table="t", retention_seconds=1).record(event)
