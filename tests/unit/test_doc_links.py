"""Every relative link and image in the project's Markdown documents points at a file or folder
of the checkout: a renamed module, or a benchmark figure left out of a commit (CI runs in a clean
clone, where an uncommitted file is missing), would otherwise show as a dead link on GitHub."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "BENCHMARKS.md", "RELIABILITY.md")
# [text](target) and ![alt](target); targets with a scheme or only an anchor are not files.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def relative_targets(text: str) -> list[str]:
    targets = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_relative_targets_skip_urls_and_anchors() -> None:
    text = ("[a](https://example.com/x) [b](#section) ![c](bench/figures/x.png) "
            "[d](RELIABILITY.md#r4-bad-input) [e](mailto:someone)")
    assert relative_targets(text) == ["bench/figures/x.png", "RELIABILITY.md"]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_is_in_the_repository(document: str) -> None:
    targets = relative_targets((ROOT / document).read_text(encoding="utf-8"))
    assert targets, f"{document} links to nothing: the pattern no longer matches its links"
    missing = sorted({target for target in targets if not (ROOT / target).exists()})
    assert not missing, f"{document} links to files that are not in the checkout: {missing}"
