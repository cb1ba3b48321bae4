"""The documents stay a short README and one page per job under docs/, and every link in them
works: a relative link points at a file or folder of the checkout (a renamed module, or a file
left out of a commit, would otherwise show as a dead link on GitHub, where CI's clean clone is what
readers see), and a `#anchor` names a heading of its page. Each page is one click from the README,
and the sizes are capped so that the structure cannot silently grow back into long logs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]
# At most this many lines: a README a newcomer reads first, pages of one job each.
README_LINES = 250
PAGE_LINES = 400
PAGE_LINES_EXCEPTIONS = {"benchmarks.md": 300}
# [text](target) and ![alt](target); targets with a scheme are not files.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text outside fenced code blocks: a `# comment` in a shell block is not a heading,
    and a bracket in code is not a link."""
    return FENCE.sub("", text)


def links(text: str) -> list[str]:
    return [target for target in LINK.findall(prose(text))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def anchors(text: str) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, anything but word characters, spaces
    and hyphens dropped, spaces made hyphens, repeats numbered -1, -2..."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(text)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken(document: Path) -> list[str]:
    """The links of a document whose file, or whose anchor in a Markdown file, is missing."""
    problems = []
    for target in links(document.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.exists() or (anchor and resolved.suffix == ".md" and anchor not in anchors(
                resolved.read_text(encoding="utf-8"))):
            problems.append(target)
    return problems


def test_links_skip_urls_and_code() -> None:
    text = ("[a](https://example.com/x) [b](#section) ![c](figures/x.png) "
            "[d](reliability.md#r4-bad-input) [e](mailto:someone)\n```sh\n[f](nowhere.md)\n```\n")
    assert links(text) == ["#section", "figures/x.png", "reliability.md#r4-bad-input"]


def test_anchors_are_githubs() -> None:
    text = ("# Title\n## On DynamoDB Local: `make run STORE=dynamodb-local`\n## Title\n"
            "```sh\n# not a heading\n```\n### R1 accounting, under faults\n")
    assert anchors(text) == {"title", "on-dynamodb-local-make-run-storedynamodb-local",
                             "title-1", "r1-accounting-under-faults"}


def test_a_missing_file_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n## Part two\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("# Page\n[ok](other.md#part-two) [self](#page) [no](other.md#part-three) "
                    "[gone](missing.md) [lost](#nowhere)\n", encoding="utf-8")
    assert broken(page) == ["other.md#part-three", "missing.md", "#nowhere"]


def test_there_are_pages() -> None:
    assert len(PAGES) >= 9, [page.name for page in PAGES]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_resolves(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert links(text), f"{document.name} links to nothing: the pattern no longer matches its links"
    assert not broken(document), f"{document.name} has dead links: {broken(document)}"


def test_every_page_is_one_click_from_the_readme() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve()
              for target in links(README.read_text(encoding="utf-8"))}
    assert [page.name for page in PAGES if page.resolve() not in linked] == []


def test_no_document_outside_docs_but_the_readme() -> None:
    """The long logs at the root are gone for good: their content lives in docs/."""
    assert sorted(path.name for path in ROOT.glob("*.md")) == ["README.md"]


def test_the_readme_stays_short() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_LINES, f"README.md has {lines} lines; move detail into docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_each_page_stays_one_job(page: Path) -> None:
    limit = PAGE_LINES_EXCEPTIONS.get(page.name, PAGE_LINES)
    lines = len(page.read_text(encoding="utf-8").splitlines())
    assert lines <= limit, f"docs/{page.name} has {lines} lines (at most {limit}): split it"
