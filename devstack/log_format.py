"""How devstack's processes log: one format, so that the pipeline's lines and its event source's
(a process of its own, writing to the same standard output) read as one log."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s %(message)s"


def configure(level: str) -> None:
    logging.basicConfig(stream=sys.stdout, level=level.upper(), format=FORMAT)
    for noisy in ("botocore", "urllib3", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
