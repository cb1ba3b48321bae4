"""How a command becomes one conditional DynamoDB update, so that out-of-order delivery still
gives the in-order result.

Each item keeps two kinds of stamps (requestTimeEpoch, then requestId):
- the *base*: `lastRequestTime`/`lastRequestId`, the newest write that replaced the whole item
  (create, put, delete). A write older than the base is superseded: the base replaced it anyway.
- per attribute, `attrStamps[name]`: the newest update that set or removed that attribute after
  the base, and `maxAttrStamp`, the newest of them. An attribute keeps its newest write, so two
  updates of different attributes apply in any order, and a late put keeps the attributes that
  newer updates wrote. A late delete keeps them too, on its tombstone where reads do not look,
  for a put between the delete and those updates that may arrive after both.

Every applied write also records its own stamp, `lastWriteTime`/`lastWriteId` (an update does not
move the base): the change stream says which request made each version (changes.py).

The first attempt (`fast`) assumes no newer update touched the item (`maxAttrStamp` older than
this request), which is the common case: one call. If that condition fails, DynamoDB returns the
item and `verdict()` says why: a final reason, or a merge against that state (`merge`), pinned to
its version so that a concurrent write makes it retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalicelib.attributes import (
    AttributeValue,
    check_item_size,
    check_name,
    check_number,
    to_attribute,
    to_map,
)
from chalicelib.commands import Command, Stamp
from chalicelib.dynamodb import ITEM_PREFIX

NAMES = {
    "#pk": "pk", "#id": "id", "#item": "item", "#version": "version", "#deleted": "deleted",
    "#ts": "lastRequestTime", "#rid": "lastRequestId", "#updated": "updatedAt",
    "#expires": "expiresAt", "#as": "attrStamps", "#mas": "maxAttrStamp",
    "#wts": "lastWriteTime", "#wid": "lastWriteId",
}
# The write must be newer than the item's base; an equal stamp is this very request.
NEWER = "(attribute_not_exists(#pk) OR #ts < :ts OR (#ts = :ts AND #rid < :rid))"
ABSENT = "(attribute_not_exists(#pk) OR attribute_exists(#deleted))"
PRESENT = "(attribute_exists(#pk) AND attribute_not_exists(#deleted))"
NO_NEWER_UPDATE = "(attribute_not_exists(#mas) OR #mas < :st)"
PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


def stamp_text(stamp: Stamp) -> str:
    """A stamp as text whose string order is the stamps' order (DynamoDB compares strings by
    UTF-8 bytes, which orders like code points, as Python does)."""
    return f"{stamp.request_time_epoch_ms:016d}#{stamp.request_id}"


class VerdictKind(StrEnum):
    MINE = "mine"  # this request already wrote the item (its outcome was lost)
    MERGE = "merge"  # apply against the item as DynamoDB returned it
    SUPERSEDED = "superseded"  # a newer write replaced the item: this one has no effect
    CONDITION = "condition"  # failed, but may hold once earlier requests arrive
    REJECTED = "rejected"  # a condition that failed for good


@dataclass(frozen=True)
class Verdict:
    """Why a write's condition failed; `reason` says it in words where the write ends there."""

    kind: VerdictKind
    reason: str = ""


def verdict(command: Command, stamp: Stamp, old: dict[str, Any] | None) -> Verdict:
    """Why the write's condition failed, given the item as it was (`from_map` form)."""
    label = f"item {command.id!r}"
    if old is None:
        if command.operation == "update":
            return Verdict(VerdictKind.CONDITION, f"{label} does not exist")
        if command.expected_version:
            return Verdict(VerdictKind.CONDITION, f"expected version "
                           f"{command.expected_version}, but {label} does not exist")
        return Verdict(VerdictKind.MERGE)  # it did not exist a moment ago: try again
    base = Stamp(int(old.get("lastRequestTime", 0)), str(old.get("lastRequestId", "")))
    stamps: dict[str, str] = old.get("attrStamps") or {}
    if base == stamp or (command.operation == "update"
                         and any(stamps.get(k) == stamp_text(stamp) for k in command.item)):
        return Verdict(VerdictKind.MINE)
    if base > stamp:
        return Verdict(VerdictKind.SUPERSEDED, (
            f"superseded: {label} was already replaced by request {base.request_id}, "
            f"made after this one (requestTimeEpoch {base.request_time_epoch_ms} > "
            f"{stamp.request_time_epoch_ms}); this older write has no effect"))
    deleted = bool(old.get("deleted"))
    current = 0 if deleted else int(old.get("version", 0))
    # A newer update already applied: the item no longer shows this request's moment, so a
    # failed condition (or any expectedVersion) is judged for good, and waiting cannot help.
    newer = str(old.get("maxAttrStamp", "")) > stamp_text(stamp)
    kind = VerdictKind.REJECTED if newer else VerdictKind.CONDITION
    if command.operation == "create" and not deleted:
        return Verdict(kind, f"{label} already exists (version {current})")
    if command.operation == "update" and deleted:
        # Updates newer than this one, kept on the tombstone, do not say the item existed at
        # this request's moment: a put between the delete and this update may still arrive.
        return Verdict(VerdictKind.CONDITION, f"{label} does not exist (it was deleted)")
    if command.expected_version is not None and newer:
        return Verdict(VerdictKind.REJECTED, (
            f"expected version {command.expected_version} can no longer be checked: a newer "
            f"update of {label} was applied first"))
    if command.expected_version is not None and command.expected_version != current:
        state = f"the current version is {current}" if current else f"{label} does not exist"
        return Verdict(kind, f"expected version {command.expected_version}, but {state}")
    return Verdict(VerdictKind.MERGE)


class UpdateBuilder:
    """The Update action of a write's transaction."""

    def __init__(self, table: str, now_ms: int, tombstone_expires_at: int) -> None:
        self.table = table
        self.now_ms = now_ms
        self.tombstone_expires_at = tombstone_expires_at

    def build(self, command: Command, stamp: Stamp,
              old: dict[str, AttributeValue] | None = None) -> dict[str, Any]:
        """The fast path, or with `old` (the item as DynamoDB returned it) the merge path."""
        st = stamp_text(stamp)
        values: dict[str, AttributeValue] = {
            ":ts": {"N": str(stamp.request_time_epoch_ms)}, ":rid": {"S": stamp.request_id},
            ":id": {"S": command.id}, ":one": {"N": "1"}, ":zero": {"N": "0"},
            ":now": {"N": str(self.now_ms)}, ":st": {"S": st}, ":empty": {"M": {}},
        }
        names = dict(NAMES)
        written_by = "#wts = :ts, #wid = :rid"
        base = f"#id = :id, #ts = :ts, #rid = :rid, #updated = :now, {written_by}"
        version = "#version = if_not_exists(#version, :zero) + :one"
        conditions = [NEWER]
        if old is not None:  # the merge path holds only against the state it was computed on
            values[":vold"] = old.get("version", {"N": "0"})
            conditions.append("#version = :vold" if "version" in old
                              else "attribute_not_exists(#version)")
        if command.operation in ("create", "put"):
            item, kept = self._kept_item(command, st, old)
            values[":item"] = {"M": item}
            self._check_size(command, item, kept, values)
            sets = [f"#item = :item, {version}, {base}"]
            removes = ["#deleted", "#expires"]
            if kept:
                sets.append(self._keep_stamps(kept, values))
            else:
                sets.append("#as = :empty")
                removes.append("#mas")
            expression = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
            if old is None:
                conditions.append(NO_NEWER_UPDATE)
            if command.operation == "create":
                conditions.append(ABSENT)
        elif command.operation == "update":
            expression = self._update_expression(command, st, old, names, values)
            expression = expression.replace("SET ", f"SET {written_by}, ", 1)
            conditions.append(PRESENT)
            if old is None:
                conditions += ["attribute_exists(#as)", NO_NEWER_UPDATE]
        else:  # delete: a tombstone, so that older writes delivered later stay superseded
            values[":true"] = {"BOOL": True}
            values[":expires"] = {"N": str(self.tombstone_expires_at)}
            # What newer updates wrote stays on the tombstone, unread: a put between this delete
            # and them may still arrive, and then it keeps them as if they came in order.
            ghosts, kept = self._kept_item(command, st, old)
            expression = f"SET #deleted = :true, {version}, #expires = :expires, {base}"
            if kept:
                values[":item"] = {"M": ghosts}
                expression += f", #item = :item, {self._keep_stamps(kept, values)}"
            else:
                expression += " REMOVE #item, #as, #mas"
            if old is None:
                conditions.append(NO_NEWER_UPDATE)
        if command.expected_version is not None:
            # The version counts newer updates too: it only says something without them.
            if NO_NEWER_UPDATE not in conditions:
                conditions.append(NO_NEWER_UPDATE)
            if command.expected_version == 0:
                conditions.append(ABSENT)
            else:
                values[":ev"] = {"N": check_number(command.expected_version, "expectedVersion")}
                conditions.append("(#version = :ev AND attribute_not_exists(#deleted))")
        condition = " AND ".join(conditions)
        # DynamoDB refuses placeholders that the expressions do not use.
        used = set(PLACEHOLDER.findall(expression + " " + condition))
        return {
            "TableName": self.table,
            "Key": {"pk": {"S": ITEM_PREFIX + command.id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {k: v for k, v in names.items() if k in used},
            "ExpressionAttributeValues": {k: v for k, v in values.items() if k in used},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    @staticmethod
    def _keep_stamps(kept: dict[str, str], values: dict[str, AttributeValue]) -> str:
        """SET the stamps of what newer updates wrote (kept by a late put or delete)."""
        values[":as"] = {"M": {k: {"S": v} for k, v in kept.items()}}
        values[":mas"] = {"S": max(kept.values())}
        return "#as = :as, #mas = :mas"

    @staticmethod
    def _kept_item(command: Command, st: str, old: dict[str, AttributeValue] | None
                  ) -> tuple[dict[str, AttributeValue], dict[str, str]]:
        """The put's item (a delete's: empty), keeping what updates newer than it wrote, and
        their stamps."""
        item = to_map(command.item)
        if old is None:
            return item, {}
        stamps = {k: v["S"] for k, v in (old.get("attrStamps") or {}).get("M", {}).items()}
        kept = {k: v for k, v in stamps.items() if v > st}
        current = (old.get("item") or {}).get("M", {})
        for name in kept:
            if name in current:
                item[name] = current[name]
            else:  # a newer update removed it
                item.pop(name, None)
        return item, kept

    @staticmethod
    def _update_expression(command: Command, st: str, old: dict[str, AttributeValue] | None,
                           names: dict[str, str], values: dict[str, AttributeValue]) -> str:
        stamps_attribute = (old or {}).get("attrStamps")
        stamps = {k: v["S"] for k, v in (stamps_attribute or {}).get("M", {}).items()}
        sets, removes, written = [], [], []
        for index, (name, value) in enumerate(command.item.items()):
            check_name(name, "item")
            attribute = to_attribute(value, f"item.{name}") if value is not None else None
            if stamps.get(name, "") >= st:
                continue  # a newer update wrote this attribute: it keeps that write
            names[f"#a{index}"] = name
            written.append(index)
            if attribute is None:
                removes.append(f"#item.#a{index}")
            else:
                values[f":a{index}"] = attribute
                sets.append(f"#item.#a{index} = :a{index}")
        sets.append("#version = #version + :one, #updated = :now")
        if old is not None and stamps_attribute is None:
            # An item from before attribute stamps: write the whole map.
            values[":as"] = {"M": {command_name: {"S": st} for command_name in
                                   (names[f"#a{i}"] for i in written)}}
            sets.append("#as = :as")
        else:
            sets.extend(f"#as.#a{i} = :st" for i in written)
        current_max = (old or {}).get("maxAttrStamp", {}).get("S", "")
        if written and current_max < st:
            sets.append("#mas = :st")
        expression = "SET " + ", ".join(sets)
        return expression + (" REMOVE " + ", ".join(removes) if removes else "")

    @staticmethod
    def _check_size(command: Command, item: dict[str, AttributeValue], kept: dict[str, str],
                    values: dict[str, AttributeValue]) -> None:
        # The item as it will be stored, under its real attribute names (version: a guess at
        # its longest text).
        check_item_size({"pk": {"S": ITEM_PREFIX + command.id}, "item": {"M": item},
                         "version": {"N": "9" * 12},
                         **{NAMES[f"#{k}"]: values[f":{k}"] for k in ("id", "ts", "rid")},
                         NAMES["#wts"]: values[":ts"], NAMES["#wid"]: values[":rid"],
                         NAMES["#updated"]: values[":now"],
                         NAMES["#as"]: {"M": {k: {"S": v} for k, v in kept.items()}},
                         NAMES["#mas"]: {"S": max(kept.values(), default="")}},
                        f"item {command.id!r}")
