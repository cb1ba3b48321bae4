"""Patches to moto, applied on import by devstack/moto_server.py (its process only), each in a
module named for what it patches: where moto differs from AWS or slows the local pipeline down.
"""

from __future__ import annotations

from devstack.moto_patches import (  # noqa: F401
    dispatcher,
    dynamodb_transactions,
    eventbridge_numbers,
    eventbridge_paths,
    sqs_depth,
    sqs_fifo_order,
)
