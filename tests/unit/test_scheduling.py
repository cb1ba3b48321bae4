"""`make test` starts the long tests first, spread over the workers (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import long_first


def shares(ordered: list[str], workers: int) -> list[list[str]]:
    """The runs pytest-xdist's worksteal scheduler hands out first: equal, in order."""
    runs, start, remaining = [], 0, len(ordered)
    for worker in range(workers):
        size = remaining // (workers - worker)
        runs.append(ordered[start:start + size])
        start, remaining = start + size, remaining - size
    return runs


def test_each_worker_starts_with_its_share_of_the_long_tests() -> None:
    items = [f"long{n}" for n in range(9)] + [f"t{n}" for n in range(50)]
    ordered = long_first(items, 4, lambda item: item.startswith("long"))
    assert sorted(ordered) == sorted(items)
    runs = shares(ordered, 4)
    for worker, run in enumerate(runs):
        mine = [f"long{n}" for n in range(worker, 9, 4)]
        assert run[:len(mine)] == mine
        assert not any(item.startswith("long") for item in run[len(mine):])
    rest = [item for item in ordered if item.startswith("t")]
    assert rest == [f"t{n}" for n in range(50)]  # the others keep their order


def test_without_workers_or_long_tests_the_order_stays() -> None:
    items = ["a", "long", "b"]
    assert long_first(items, 0, lambda item: item == "long") == items
    assert long_first(items, 4, lambda item: False) == items
