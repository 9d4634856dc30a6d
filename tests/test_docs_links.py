"""Every relative link and anchor in README.md, docs/*.md and the generated results/*/README.md resolves to a file
(and heading) inside the repository, and README.md links every page of docs/."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("results/*/README.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """The text with fenced code blocks and inline code spans removed (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def anchors(md: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats suffixed -1, -2, ..."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", md.read_text())):
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors on its text
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return out


def links(md: Path) -> list[str]:
    text = _prose(md.read_text())
    return INLINE_LINK.findall(text) + REFERENCE_DEF.findall(text)


def broken_links(md: Path, root: Path) -> list[str]:
    """Each relative link of ``md`` that leaves ``root``, names a missing file or a missing heading anchor."""
    root, problems = root.resolve(), []
    for target in links(md):
        if SCHEME.match(target):  # https:, mailto:: not a file of this repository
            continue
        path, _, fragment = target.partition("#")
        dest = (md.parent / path).resolve() if path else md.resolve()
        if dest != root and root not in dest.parents:
            problems.append(f"{target}: outside the repository")
        elif not dest.exists():
            problems.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            problems.append(f"{target}: no heading '#{fragment}' in {dest.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page, ROOT) == []


def test_readme_links_every_docs_page():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md") if not SCHEME.match(t)}
    assert [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked] == []


def test_the_checker_reports_each_kind_of_broken_link(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (tmp_path / "outside.md").write_text("# Outside\n")
    (repo / "docs" / "notes.md").write_text("# Notes\n\n## Does C use z? (KL weight, `recon`)\n\n## Notes\n")
    (repo / "plot.png").write_bytes(b"")
    (repo / "README.md").write_text(
        "# Title\n\n"
        "[ok](docs/notes.md) [ok](docs/notes.md#does-c-use-z-kl-weight-recon) [ok](docs/notes.md#notes-1) "
        "![ok](plot.png) [ok](#title) [web](https://example.org/x#y) `[code](missing.md)`\n\n"
        "```\n[fenced](missing.md)\n```\n\n"
        "[gone](docs/missing.md) [bad anchor](docs/notes.md#results-full-profile) [up](../outside.md)\n\n"
        "[ref]: docs/nope.md\n"
    )
    assert broken_links(repo / "README.md", repo) == [
        "docs/missing.md: no such file",
        "docs/notes.md#results-full-profile: no heading '#results-full-profile' in docs/notes.md",
        "../outside.md: outside the repository",
        "docs/nope.md: no such file",
    ]
