"""bench.consumer's scenarios against moto over HTTP, small: the benchmark must measure the real
store through the real BatchProcessor (it once called ItemStore.apply with an old signature, and
every message "failed" without anyone noticing)."""

from __future__ import annotations

import pytest

from bench.consumer import run_scenario


@pytest.mark.parametrize("kind", ["store", "naive"])
def test_a_scenario_in_order_applies_every_message(endpoint_url: str, kind: str) -> None:
    result = run_scenario(f"check {kind}", kind, False, 40, 7, 60)
    assert result.records == 40 and not result.truncated
    assert "retry" not in result.statuses, result.statuses
    assert result.statuses["applied"] > 0
    assert result.items_checked == 5
    if kind == "store":  # in order, the store gives the in-order items exactly
        assert result.wrong_items == 0
