"""Every page of the book loads offline without errors, and its mathematics is typeset."""
from __future__ import annotations

import re

import pytest

from sitehelpers import MISSING_MSG, page_params, require_site, toc_pages

pytestmark = pytest.mark.browser

PAGES = page_params(toc_pages())

# TeX that MathJax should have replaced. Code blocks, inputs and MathJax output are not searched.
RAW_TEX = [
    (re.compile(r"\$\$"), "$$"),
    (re.compile(r"\\[()\[\]]"), r"\( \) \[ \]"),
    (re.compile(r"\\(begin|end)\{"), r"\begin{ / \end{"),
    (re.compile(r"\\(frac|mathbb|mathcal|mathrm|left|right|sum|int|sqrt|lambda|sigma|alpha|top|operatorname)\b"),
     "a TeX command"),
    (re.compile(r"(?<![\w$])\$[^$\s][^$\n]{0,200}?[\\^_{}][^$\n]{0,200}?\$(?!\w)"), "$...$ with TeX inside"),
]


def _snippet(text: str, m: re.Match) -> str:
    return text[max(0, m.start() - 40): m.end() + 40].replace("\n", " ")


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_errors(page, visited):
    """No JavaScript exception, no console error, no local asset answering >= 400."""
    require_site()
    rec = visited(page)
    problems = rec["load"]["problems"]
    if "error" in rec["info"]:
        problems = problems + [f"reading the page failed: {rec['info']['error']}"]
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_page_needs_no_network(page, visited):
    """The site works offline: it does not fetch scripts, styles, fonts or images from other hosts.

    External requests are aborted by the tests; this lists what the page tried to fetch (a CDN copy of
    MathJax or of the ipywidgets embedder, web fonts, ...). Links the reader clicks are not requests.
    """
    require_site()
    needed = [e for e in visited(page)["load"]["external"] if e.split(" ", 1)[0] in ("script", "stylesheet", "font", "image", "fetch", "xhr", "media")]
    assert not needed, (f"{page} fetches resources from the network, which fail offline "
                        "(vendor them under book/_static):\n  " + "\n  ".join(dict.fromkeys(needed)))


@pytest.mark.parametrize("page", PAGES)
def test_math_renders(page, visited):
    """MathJax typesets every formula: no raw TeX left in the text, no MathJax error boxes."""
    require_site()
    info = visited(page)["info"]
    assert "error" not in info, f"{page}: reading the page failed: {info.get('error')}"
    text = info["text"]
    problems = []
    if info["mathNodes"] and not info["mathjax"]:
        problems.append("the page has math but MathJax never started "
                        f"(script: {info['mathjaxSrc'] or 'none'}; a CDN copy cannot load offline)")
    if info["unrendered"]:
        problems.append(f"{len(info['unrendered'])} of {info['mathNodes']} formulas not typeset, e.g. "
                        + " | ".join(info["unrendered"][:3]))
    if info["mathNodes"] and not info["containers"]:
        problems.append("no mjx-container on a page with math")
    for m in info["merrors"]:
        problems.append(f"MathJax error: {m}")
    for rx, what in RAW_TEX:
        hits = [_snippet(text, m) for m in rx.finditer(text)]
        if hits:
            problems.append(f"raw TeX ({what}) in the text, {len(hits)}x, e.g. ...{hits[0]}...")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def test_site_exists():
    """The site must be built before the browser tests run: fail, never skip."""
    from sitehelpers import site_ok

    if not site_ok():
        pytest.fail(MISSING_MSG, pytrace=False)
    assert toc_pages(), "no pages found in the site's sidebar or book/*.html"
