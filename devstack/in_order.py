"""The reference for in-order results: an item as applying requests one by one, in the order API
Gateway stamped them, leaves it (docs/how-it-works.md, "In-order results"). Shared by the
property tests (tests/functional/test_in_order.py) and the reliability runs
(bench/reliability.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.commands import Command, Stamp


@dataclass
class Model:
    """The item as applying requests one by one, in stamp order, leaves it."""

    exists: bool = False
    item: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    def apply(self, command: Command) -> bool:
        ev = command.expected_version
        if ev is not None and (ev != (self.version if self.exists else 0)
                               or (ev == 0 and self.exists)):
            return False
        if command.operation == "create" and self.exists:
            return False
        if command.operation == "update" and not self.exists:
            return False
        if command.operation in ("create", "put"):
            self.exists, self.item = True, dict(command.item)
        elif command.operation == "update":
            for name, value in command.item.items():
                if value is None:
                    self.item.pop(name, None)
                else:
                    self.item[name] = value
        else:
            self.exists, self.item = False, {}
        self.version += 1
        return True


def apply_in_order(requests: Iterable[tuple[Stamp, Command]]) -> tuple[Model, dict[str, bool]]:
    """The model after every (write) request in stamp order, and whether each applied, by
    requestId."""
    model, applied = Model(), {}
    for stamp, command in sorted(requests, key=lambda pair: pair[0]):
        applied[stamp.request_id] = model.apply(command)
    return model, applied
