"""The local pipeline's own settings (devstack/pipeline_settings.py)."""

from __future__ import annotations

import pytest

from devstack.pipeline_settings import stream_poll_seconds
from devstack.stream_poller import POLL_INTERVAL_SECONDS


def test_the_stream_is_read_as_often_as_lambda_reads_it_unless_told(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVSTACK_STREAM_POLL_SECONDS", raising=False)
    assert stream_poll_seconds() == POLL_INTERVAL_SECONDS == 0.25
    monkeypatch.setenv("DEVSTACK_STREAM_POLL_SECONDS", "1")
    assert stream_poll_seconds() == 1.0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_a_poll_interval_that_is_not_a_positive_number_is_refused(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DEVSTACK_STREAM_POLL_SECONDS", value)
    with pytest.raises(ValueError):
        stream_poll_seconds()
