"""The chapters' sources: the appendix the package cites exists with its sections, results carry
the paper's numbers, and code cells fit the page (no browser needed; tests/browser measures the
rendered site)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("*.md"))
SECTIONS = ["Conventions", "Closed-form solutions", "Integrators", "Cost model", "Test oracles"]
# results the paper numbers: a link to one of them must say the paper's number
PAPER_RESULTS = {
    "pc-lem-1": "Lemma 1", "imb-lem-2": "Lemma 2", "lem-lemma3": "Lemma 3", "lem-lemma4": "Lemma 4",
    "lem-lemma5": "Lemma 5", "lem-margin": "Lemma B.1", "lem-g1": "Lemma G.1", "lem-g6": "Lemma G.6",
    "thm-two-layer": "Theorem 1", "thm-three-layer": "Theorem 2", "thm-deep": "Theorem 3",
    "thm-classification": "Theorem 4", "cor-three-layer": "Corollary 1", "cor-deep": "Corollary 2",
    "def-interlacing": "Definition 4", "def-unimodal": "Definition 3",
}


def _code_lines(text):
    inside = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```{code-cell}") or line.startswith("```python"):
            inside = True
        elif inside and line.startswith("```"):
            inside = False
        elif inside:
            yield n, line


def test_appendix_numerics_has_its_sections_and_is_in_the_toc():
    text = (BOOK / "appendix_numerics.md").read_text()
    assert "(appendix-numerics)=\n# Numerical methods" in text
    assert re.findall(r"^## (.+)$", text, re.M) == SECTIONS
    assert "book/appendix_numerics" in (ROOT / "_toc.yml").read_text()


@pytest.mark.parametrize("label,number", sorted(PAPER_RESULTS.items()))
def test_results_of_the_paper_carry_its_number(label, number):
    text = "\n".join(p.read_text() for p in CHAPTERS)
    directive = re.search(r"\{prf:\w+\} ([^\n]*)\n:label: " + re.escape(label) + r"\n", text)
    assert directive, f"{label} is not defined"
    title = directive.group(1)
    shown = re.findall(r"\{prf:ref\}`([^`<]*) <" + re.escape(label) + ">`", text)
    if title.endswith(f"({number} in the paper)"):
        # the book's own numbering (issue 24): the paper's number once, in the title; links
        # show the number sphinx-proof generates
        assert not shown, f"links to {label} must show the book's number, not {shown}"
        return
    # the older form: the title starts with the paper's number and every link shows it
    assert title.startswith(number.replace("the ", "")), title
    bare = re.findall(r"\{prf:ref\}`" + re.escape(label) + "`", text)
    assert not bare, f"a link to {label} shows the book's number instead of '{number}'"
    for s in shown:
        assert s.strip() == number, (label, s)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_bare_cite(path):
    # {cite} renders "[Author, year]" even where the sentence needs the name: use :t or :p
    # (citations of documents outside the project: tests/test_self_contained.py)
    assert "{cite}`" not in path.read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_code_lines_fit_88_characters(path):
    long = [(n, len(line)) for n, line in _code_lines(path.read_text())
            if len(line) > 88 and "install linflow" not in line]
    assert not long, f"{path.name}: code lines over 88 characters at {long}"
