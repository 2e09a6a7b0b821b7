"""Chapter 9 teaches, the engineering lives in the unnumbered part "Using linflow".

Structural checks of the split (issue 24, item 5): the part's place and numbering in the table
of contents, which page installs Dask, and that the numbered chapter keeps no benchmark tables.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import publish  # noqa: E402

GUIDES = ["book/guide_sweeps", "book/guide_gpu", "book/guide_benchmarks"]


def _parts():
    return yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]


def test_using_linflow_is_an_unnumbered_part_between_the_course_and_the_appendix():
    captions = [p["caption"] for p in _parts()]
    assert "Using linflow" in captions, captions
    k = captions.index("Using linflow")
    assert captions[k - 1] == "The course" and captions[k + 1] == "Appendix", captions
    part = _parts()[k]
    assert part.get("numbered") is False
    assert [c["file"] for c in part["chapters"]] == GUIDES
    course = [c["file"] for c in _parts()[captions.index("The course")]["chapters"]]
    assert "book/09_at_scale" in course and not set(GUIDES) & set(course)


def test_the_page_that_starts_a_dask_cluster_installs_dask_and_only_it():
    # a code cell (executed at build time) that starts a LocalCluster
    cell = re.compile(r'```\{code-cell\}[^`]*client="local"')
    runs = sorted(p.stem for p in publish.book_pages()
                  if cell.search(p.read_text(encoding="utf-8")))
    assert runs == ["guide_sweeps"], runs
    assert set(publish.PAGE_EXTRAS) == {"guide_sweeps"}
    assert "distributed" in publish.page_extra("book/guide_sweeps.md")[1]


def test_the_numbered_chapter_has_no_benchmark_or_target_tables():
    text = (ROOT / "book" / "09_at_scale.md").read_text(encoding="utf-8")
    for word in ("results.json", "diffrax", "torchode", "meets_target", "set_backend",
                 "SLURMCluster", "LocalCluster"):
        assert word not in text, word
    for label in ("open-problems-at-scale", "scale-delta-positive", "scale-tightness",
                  "scale-eq18"):
        assert "{ref}`" + label + "`" in text, label


def test_the_guides_print_no_target_columns():
    for g in GUIDES:
        text = (ROOT / f"{g}.md").read_text(encoding="utf-8")
        assert "meets_target" not in text and "target met" not in text.lower(), g
