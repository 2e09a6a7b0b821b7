"""Screenshots of every page at desktop and phone width and in dark mode; the layouts are usable:
no math block or code cell is wider than its box at either width, no inline formula or table is
cut off (one wider than its column scrolls in a box of its own), and dark mode keeps every text
(the explorers' included) readable, and figures and explorer frames follow the theme (a light
face in light mode, a dark one in dark mode).

Screenshots: _build/screenshots/<page>-desktop.png, <page>-phone.png, <page>-dark.png
(LINFLOW_SCREENSHOTS overrides the folder). Pages taller than 12000 px (LINFLOW_SCREENSHOT_MAX)
are cut there; the dark one shows the first 2400 px. They are taken during the page's single load
(see pagechecks.record_screens); these tests check what was recorded.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pagechecks import DESKTOP, LIGHT_MIN_CONTRAST, MIN_CONTRAST, PHONE
from sitehelpers import page_params, require_site, toc_pages

pytestmark = pytest.mark.browser

PAGES = page_params(toc_pages())
LIGHT_FACE = 0.6    # relative luminance of a figure's border band: at least this in light mode
DARK_FACE = 0.1     # at most this in dark mode (the page's own background is about 0.01)


def _stage(rec: dict, name: str, page: str) -> dict:
    res = rec[name]
    if "error" in res:
        pytest.fail(f"{page}: the {name} stage failed: {res['error']}\n{res.get('trace', '')}")
    return res


def _shot_ok(path: str) -> list[str]:
    f = Path(path)
    return [] if f.is_file() and f.stat().st_size > 2000 else [f"screenshot {f} missing or empty"]


def _low(contrast: dict, label: str, limit: int = 8) -> list[str]:
    out = [f"{label}low contrast {b['q']} on <{b['tag']} class='{b['cls']}'> '{b['text']}': {b['fg']} on {b['bg']}"
           for b in contrast["bad"][:limit]]
    if len(contrast["bad"]) > limit:
        out.append(f"... and {len(contrast['bad']) - limit} more low-contrast elements")
    return out


@pytest.mark.parametrize("page", PAGES)
def test_desktop(page, visited):
    """Desktop screenshot (1280x800); in light mode no text falls below contrast 3."""
    require_site()
    res = _stage(visited(page), "desktop", page)
    problems = _shot_ok(res["shot"]) + _low(res["contrast"], f"light mode (< {LIGHT_MIN_CONTRAST}): ")
    problems += [f"figure '{f['alt'] or f['src']}' has a dark face in light mode (luminance {f['lum']})"
                 for f in res["figures"] if f["lum"] < LIGHT_FACE]
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_dark_mode(page, visited):
    """The theme switch selects dark mode and remembers it; the background is dark and every visible
    text keeps a contrast ratio >= 4.5 with what is behind it."""
    require_site()
    res = _stage(visited(page), "dark", page)
    c = res["contrast"]
    problems = _shot_ok(res["shot"])
    if res["how"] != "button":
        problems.append("the theme switch button did not select dark mode (set by script instead)")
    if res["stored"] != "dark":
        problems.append(f"dark mode is not remembered (localStorage 'theme' is {res['stored']!r})")
    if c["theme"] != "dark":
        problems.append(f"data-theme is '{c['theme']}', not 'dark'")
    if c["bgLum"] > 0.2:
        problems.append(f"the background is not dark in dark mode (relative luminance {c['bgLum']:.2f})")
    if c["bodyRatio"] < MIN_CONTRAST:
        problems.append(f"body text contrast {c['bodyRatio']:.2f} < {MIN_CONTRAST}")
    problems += _low(c, "")
    problems += [f"JS error on switching the theme: {e}" for e in res["errors"]]
    # figures and explorer frames follow the theme: a dark face, as the reader sees it
    problems += [f"figure '{f['alt'] or f['src']}' keeps a light face in dark mode (luminance {f['lum']})"
                 for f in res["figures"] if f["lum"] > DARK_FACE]
    problems += [f"explorer {i + 1} sits in a light box in dark mode (luminance {lum})"
                 for i, lum in enumerate(res["panels"]) if lum > DARK_FACE]
    if page == "book/01_linear_models.html" and not res["figures"]:
        problems.append("no figure measured on a chapter that draws figures (the measurement is broken)")
    assert not problems, f"{page} (dark mode, {c['checked']} text elements checked):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_phone(page, visited):
    """Phone screenshot (390x844); the page does not scroll sideways on a phone."""
    require_site()
    res = _stage(visited(page), "phone", page)
    o = res["overflow"]
    problems = _shot_ok(res["shot"])
    if o["sw"] > o["W"] + 1:
        problems.append(f"on a phone ({PHONE[0]} px wide) the page is {o['sw']} px wide and scrolls sideways; "
                        "too wide: " + "; ".join(o["culprits"] or ["(not found)"]))
    if not res["article"]:
        problems.append("on a phone the article is not visible")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def _wide(res: dict) -> list[str]:
    return [f"{w['kind']} {w['where']}{' #' + w['id'] if w['id'] else ''}: {w['need']} px in a {w['have']} px box: {w['text']}"
            for w in res["wide"]["wide"]]


@pytest.mark.parametrize("width", ["desktop", "phone"])
@pytest.mark.parametrize("page", PAGES)
def test_math_and_code_fit(page, width, visited):
    """Every display equation and code block fits its box at desktop (1280 px) and phone (390 px)
    width, and no inline formula or table runs past its text column: nothing to scroll sideways
    but a box made to scroll, nothing cut off. Each offender is listed with where it is."""
    require_site()
    res = _stage(visited(page), width, page)
    px = (DESKTOP if width == "desktop" else PHONE)[0]
    problems = _wide(res)
    n = res["wide"]
    if page.startswith("book/0"):    # every chapter has inline math: the measurement saw it
        assert n["inline"] > 0, f"{page}: no inline formula measured"
    assert not problems, (f"{page} at {px} px: {len(problems)} of its {n['math']} display equations, "
                          f"{n['code']} code blocks (cells, outputs, listings), {n['inline']} inline "
                          f"formulas and {n['tables']} tables are wider than their box or cut off "
                          "(split the equation with aligned/split, wrap the code line):\n  " + "\n  ".join(problems))
