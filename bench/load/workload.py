"""The commands a load run sends: unique creates by default, or a mix over a set of ids."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

# Operation weights of the mix: mostly writes that can succeed, some that a set of shared ids
# makes conflict (a create of an existing id, an update of a deleted one is rejected).
MIX_WEIGHTS = {"create": 2, "update": 4, "put": 3, "delete": 1}


@dataclass(frozen=True)
class Command:
    item_id: str
    operation: str
    body: bytes


class Workload:
    """Command number i of a run; deterministic for a given run tag and seed."""

    def __init__(self, run_tag: str, mix: bool = False, ids: int = 50, seed: int = 1) -> None:
        self.run_tag = run_tag
        self.mix = mix
        self.ids = ids
        self.random = random.Random(seed)
        self.operations = list(MIX_WEIGHTS)
        self.weights = list(MIX_WEIGHTS.values())

    def command(self, index: int) -> Command:
        if not self.mix:
            return _command(f"load-{self.run_tag}-{index}", "create", index)
        item_id = f"load-{self.run_tag}-{self.random.randrange(self.ids)}"
        operation = self.random.choices(self.operations, self.weights)[0]
        return _command(item_id, operation, index)


def _command(item_id: str, operation: str, index: int) -> Command:
    document: dict[str, object] = {"operation": operation, "id": item_id}
    if operation != "delete":
        document["item"] = {"name": "load test", "n": index}
    return Command(item_id, operation, json.dumps(document).encode("utf-8"))
