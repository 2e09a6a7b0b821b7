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
# results the paper numbers: the statement's title gives the paper's number, links the book's
PAPER_RESULTS = {
    "pc-lem-1": "Lemma 1", "imb-lem-2": "Lemma 2", "lem-lemma3": "Lemma 3", "lem-lemma4": "Lemma 4",
    "lem-lemma5": "Lemma 5", "lem-margin": "Lemma B.1", "lem-g1": "Lemma G.1", "lem-g6": "Lemma G.6", "lem-g7": "Lemma G.7",
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
    """One numbering: the book's own. The paper's number stands once, beside the statement
    ("... (Theorem 2 in the paper)"); every link to the result shows the book's number (a bare
    {prf:ref}, no text of its own)."""
    text = "\n".join(p.read_text() for p in CHAPTERS)
    directive = re.search(r"\{prf:\w+\} ([^\n]*)\n:label: " + re.escape(label) + r"\n", text)
    assert directive, f"{label} is not defined"
    assert f"({number} in the paper" in directive.group(1), directive.group(1)
    titles = re.findall(r"\{prf:\w+\} [^\n]*\(" + re.escape(number) + r" in the paper", text)
    assert len(titles) == 1, f"the paper's {number} is beside {len(titles)} statements"
    shown = re.findall(r"\{prf:ref\}`([^`<]*) <" + re.escape(label) + ">`", text)
    assert not shown, f"links to {label} show their own text {shown} instead of the book's number"


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
