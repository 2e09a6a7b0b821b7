"""The project is self-contained: every citation resolves inside it.

The developers' private notes (theory, numerics, course, design and style notes) are not part
of the repository, so nothing in it may cite them ("theory.md §10", "numerics §5.3",
"course.md") or name a path on a developer's machine (/work/..., /home/...). Cite the paper's
own numbering, the book's chapter *Errata and open problems*, or the book's appendix
*Numerical methods* instead. Scanned: every file git tracks (sources, docstrings, tests,
benchmarks, configuration, results) and, when it has been built, the website's pages.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTES = ("theory", "numerics", "course", "design", "style")
# "theory.md", "numerics.md §2.3", "numerics §5.3", "theory §10", "course.md (c)"
NOTE_RE = re.compile(r"\b(?P<name>" + "|".join(NOTES) + r")(?P<md>\.md)?(?(md)|\s*§)", re.I)
# an absolute path on a developer's machine
PATH_RE = re.compile(r"(?<![\w.:/-])/(?:work|home|Users|root|mnt|scratch)/[\w.-]+")
TEXT_SUFFIXES = {".py", ".md", ".txt", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".json", ".ipynb",
                 ".bib", ".css", ".js", ".html", ".sh", ".csv", ""}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"not a git checkout ({e}): the tracked files are unknown")
    return [ROOT / p for p in out.decode().split("\0") if p]


def offending(text: str, project_names: set[str]) -> list[str]:
    """The citations of documents outside the project, and the machine paths, in TEXT."""
    found = []
    for m in NOTE_RE.finditer(text):
        if m.group("md") and f"{m.group('name').lower()}.md" in project_names:
            continue     # a file of the project with that name: a real citation
        found.append(m.group(0))
    found += PATH_RE.findall(text)
    return found


def _report(hits: dict[str, list[str]]) -> str:
    lines = [f"  {f}: {', '.join(sorted(set(h)))}" for f, h in sorted(hits.items())]
    return (f"{len(hits)} file(s) cite documents outside the project or name a machine path "
            "(cite the paper, the book's Errata chapter or its appendix Numerical methods):\n"
            + "\n".join(lines))


def test_the_detector_finds_what_it_must():
    names = {"README.md"}
    assert offending("see theory.md §10 and numerics §5.3", names) == ["theory.md", "numerics §"]
    assert offending("Reference: course.md (c)", names) == ["course.md"]
    assert offending("# Reference: /work/shared/reference/course.md", names) == ["course.md", "/work/shared"]
    assert offending("no path: https://example.org/work/x, a/work/b, ./home/x", names) == []
    assert offending("the course, in style; see Theorem 2 and Min et al. 2023, §4.2", names) == []
    assert offending("the book's style.md", {"style.md"}) == []


def test_tracked_files_cite_only_the_project():
    files = tracked_files()
    names = {p.name.lower() for p in files}
    me = Path(__file__).resolve()
    hits = {}
    for p in files:
        if p.resolve() == me or p.suffix.lower() not in TEXT_SUFFIXES or not p.is_file():
            continue
        text = p.read_text(encoding="utf-8", errors="replace")
        found = offending(text, names)
        if found:
            hits[str(p.relative_to(ROOT))] = found
    assert not hits, _report(hits)


def test_built_site_cites_only_the_project():
    site = ROOT / "_build" / "html"
    if not (site / "index.html").exists():
        pytest.skip("the website is not built (python3 dev.py book)")
    names = {p.name.lower() for p in tracked_files()}
    hits = {}
    for p in sorted(site.rglob("*.html")):
        if "_static" in p.parts:
            continue
        text = re.sub(r"<[^>]+>", " ", p.read_text(encoding="utf-8", errors="replace"))
        found = offending(text, names)
        if found:
            hits[str(p.relative_to(site))] = found
    assert not hits, _report(hits)
