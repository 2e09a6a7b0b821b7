"""Theorem, proof and exercise boxes render; solutions open and close; explorers respond to input."""
from __future__ import annotations

import pytest

from sitehelpers import page_has, page_params, require_site, site_ok, toc_pages

pytestmark = pytest.mark.browser

BOX_MARKERS = ('class="proof', 'class="exercise', 'class="solution')
TOGGLE_MARKERS = ("dropdown", "toggle", "<details")
EXPLORER_MARKER = "linflow-explorer"


def pages_with(*needles: str, none: str) -> list:
    """Params for the toc pages containing one of needles; one visibly skipped param when none do."""
    if not site_ok():
        return page_params([])
    found = [p for p in toc_pages() if page_has(p, *needles)]
    if found:
        return page_params(found)
    return [pytest.param(None, id="none", marks=pytest.mark.skip(reason=none))]


BOXES_JS = r"""
() => {
  const root = document.querySelector('article.bd-article') || document.body;
  const sheets = Array.from(document.styleSheets).map(s => s.href || '').filter(Boolean);
  const out = [];
  for (const box of root.querySelectorAll('div.proof, div.exercise, div.solution')) {
    const cs = getComputedStyle(box);
    const kind = box.classList.contains('exercise') ? 'exercise' : box.classList.contains('solution') ? 'solution'
               : (Array.from(box.classList).find(c => !['proof', 'admonition', 'dropdown', 'toggle', 'toggle-hidden', 'toggle-shown'].includes(c)) || 'proof');
    const title = box.querySelector(':scope > .admonition-title');
    const r = box.getBoundingClientRect();
    const hiddenByToggle = !!box.closest('.toggle-hidden, details:not([open])') && !box.classList.contains('toggle-hidden');
    out.push({
      kind, id: box.id,
      title: title ? title.textContent.trim().slice(0, 80) : '',
      text: box.textContent.trim().length,
      height: r.height, width: r.width,
      styled: parseFloat(cs.borderLeftWidth) > 0 || parseFloat(cs.borderTopWidth) > 0 || cs.boxShadow !== 'none'
              || !/rgba\(0, 0, 0, 0\)|transparent/.test(cs.backgroundColor),
      display: cs.display, visibility: cs.visibility,
      hiddenByToggle,
    });
  }
  return {boxes: out, proofCss: sheets.some(h => /proof\.css/.test(h)), exerciseCss: sheets.some(h => /exercise\.css/.test(h))};
}
"""


@pytest.mark.parametrize("page", pages_with(*BOX_MARKERS, *TOGGLE_MARKERS,
                                             none="no page has a theorem, proof, exercise or dropdown yet"))
def test_boxes_and_solutions(page, loaded):
    """sphinx-proof / sphinx-exercise boxes are styled and titled (e.g. 'Theorem 2 (…)') with content;
    every dropdown (solutions) and <details> opens on a click and closes on a second one."""
    require_site()
    p = loaded(page)
    n_err = len(p.visit.page_errors)  # load errors are test_pages' business
    problems = check_boxes(p, page_has(page, *BOX_MARKERS)) + check_toggles(p, page)
    problems += [f"JS error during the test: {e}" for e in p.visit.page_errors[n_err:]]
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def check_boxes(p, expected: bool) -> list[str]:
    res = p.evaluate(BOXES_JS)
    problems = []
    kinds = {b["kind"] for b in res["boxes"]}
    if expected and not res["boxes"]:
        problems.append("the HTML names proof/exercise/solution classes but no box is in the article")
    if kinds - {"exercise", "solution"} and not res["proofCss"]:
        problems.append("proof.css (sphinx-proof) is not loaded")
    if kinds & {"exercise", "solution"} and not res["exerciseCss"]:
        problems.append("exercise.css (sphinx-exercise) is not loaded")
    for b in res["boxes"]:
        name = f"{b['kind']} #{b['id'] or '?'} ({b['title'] or 'untitled'})"
        if b["text"] == 0:
            problems.append(f"{name}: empty")
        if not b["styled"]:
            problems.append(f"{name}: not styled as a box (no border, shadow or background)")
        if b["kind"] != "proof" and not b["title"]:  # a proof starts with "Proof." instead
            problems.append(f"{name}: no title")
        if b["kind"] not in ("solution",) and not b["hiddenByToggle"]:
            if b["display"] == "none" or b["visibility"] == "hidden" or b["height"] < 5 or b["width"] < 50:
                problems.append(f"{name}: not visible (display={b['display']}, visibility={b['visibility']}, "
                                f"{b['width']:.0f}x{b['height']:.0f} px)")
    return problems


def check_toggles(p, page: str) -> list[str]:
    problems = []
    toggles = p.locator("article .admonition.toggle")
    n = toggles.count()
    for i in range(n):
        box = toggles.nth(i)
        name = f"toggle #{box.get_attribute('id') or i} ({(box.locator(':scope > .admonition-title').first.text_content() or '').strip()[:60]})"
        title = box.locator(":scope > .admonition-title").first
        button = title.locator("button.toggle-button").first
        clicker = button if button.count() else title  # the chevron; the title may hold a link
        body = box.locator(":scope > :not(.admonition-title)").first
        if body.count() == 0:
            problems.append(f"{name}: no content")
            continue
        shown_first = "toggle-shown" in (box.get_attribute("class") or "")
        try:
            box.scroll_into_view_if_needed()
            if shown_first:
                body.wait_for(state="visible", timeout=3000)
            else:
                body.wait_for(state="hidden", timeout=3000)
        except Exception:
            problems.append(f"{name}: starts {'hidden' if shown_first else 'visible'}, expected the opposite")
            continue
        for step in ("open", "close") if not shown_first else ("close", "open"):
            clicker.click()
            try:
                body.wait_for(state="visible" if step == "open" else "hidden", timeout=3000)
            except Exception:
                problems.append(f"{name}: a click did not {step} it")
                break
    details = p.locator("article details")
    for i in range(details.count()):
        d = details.nth(i)
        summary = d.locator(":scope > summary").first
        name = f"details #{i} ({(summary.text_content() or '').strip()[:60]})"
        was_open = d.evaluate("e => e.open")
        summary.scroll_into_view_if_needed()
        summary.click()
        now = d.evaluate("e => e.open")
        if now == was_open:
            problems.append(f"{name}: a click did not {'close' if was_open else 'open'} it")
            continue
        content = d.locator(":scope > :not(summary)").first
        if now and content.count() and not content.is_visible():
            problems.append(f"{name}: open, but its content is not visible")
        summary.click()
        if d.evaluate("e => e.open") != was_open:
            problems.append(f"{name}: a second click did not toggle it back")
    if n == 0 and details.count() == 0 and page_has(page, "dropdown"):
        if p.locator("article .dropdown").count():
            problems.append("dropdown elements exist but sphinx-togglebutton added no toggle (togglebutton.js not run?)")
    return problems


IMG_OK = """img => new Promise(r => { const ok = () => r(img.complete && img.naturalWidth > 0);
    if (img.complete) ok(); else { img.addEventListener('load', ok, {once: true});
    img.addEventListener('error', ok, {once: true}); setTimeout(ok, 5000); } })"""

FRAME_STATE_JS = r"""
(root) => {
  const h = (str) => { let x = 2166136261; for (let i = 0; i < str.length; i++) { x ^= str.charCodeAt(i); x = Math.imul(x, 16777619); } return (x >>> 0).toString(16) + '/' + str.length; };
  return Array.from(root.querySelectorAll('img, svg, canvas, output, .linflow-value')).map(e => {
    const cs = getComputedStyle(e);
    const vis = cs.display !== 'none' && cs.visibility !== 'hidden' && e.getBoundingClientRect().width > 0;
    return [e.tagName, vis, e.getAttribute('src') ? h(e.getAttribute('src')) : '',
            e.tagName === 'OUTPUT' || e.classList.contains('linflow-value') ? e.textContent : '',
            e.tagName.toLowerCase() === 'svg' ? h(e.innerHTML) : ''].join('|');
  }).join('\n');
}
"""


@pytest.mark.parametrize("page", pages_with(EXPLORER_MARKER, none="no page has a .linflow-explorer yet"))
def test_explorers_respond_to_input(page, loaded):
    """Each kernel-free explorer (.linflow-explorer) has sliders and frames, and moving a slider changes the figure."""
    require_site()
    p = loaded(page)
    n_err = len(p.visit.page_errors)  # load errors are test_pages' business
    problems = []
    explorers = p.locator(".linflow-explorer")
    n = explorers.count()
    if n == 0:
        problems.append("the HTML names linflow-explorer but no explorer is on the page")
    for i in range(n):
        ex = explorers.nth(i)
        name = f"explorer #{i + 1}" + (f" ({ex.get_attribute('id')})" if ex.get_attribute("id") else "")
        sliders = ex.locator("input.linflow-slider")
        frames = ex.locator("img.linflow-frame")
        if sliders.count() == 0:
            problems.append(f"{name}: no input.linflow-slider")
        if frames.count() == 0:
            problems.append(f"{name}: no img.linflow-frame")
        if sliders.count() == 0 or frames.count() == 0:
            continue
        ex.scroll_into_view_if_needed()
        visible = [k for k in range(frames.count()) if frames.nth(k).is_visible()]
        if not visible:
            problems.append(f"{name}: no frame is visible")
        for k in range(frames.count()):
            f = frames.nth(k)
            if f.is_visible() and not f.evaluate(IMG_OK):
                problems.append(f"{name}: frame {k + 1} is broken (did not load: {(f.get_attribute('src') or '')[:80]})")
        for j in range(sliders.count()):
            s = sliders.nth(j)
            label = s.get_attribute("aria-label") or s.get_attribute("name") or s.get_attribute("id") or f"slider {j + 1}"
            before = ex.evaluate(FRAME_STATE_JS)
            v0 = s.input_value()
            # a real key press first, as a reader would do it
            s.focus()
            s.press("ArrowRight" if s.evaluate("e => +e.value < +e.max") else "ArrowLeft")
            p.wait_for_timeout(50)
            after = ex.evaluate(FRAME_STATE_JS)
            if s.input_value() == v0:
                problems.append(f"{name}, {label}: the arrow key did not move the slider")
            if after == before:
                # then setting the value programmatically, with the events a browser fires
                s.evaluate("""e => { const lo = +e.min || 0, hi = +(e.max || 100);
                    e.value = (+e.value === hi) ? lo : hi;
                    e.dispatchEvent(new Event('input', {bubbles: true}));
                    e.dispatchEvent(new Event('change', {bubbles: true})); }""")
                p.wait_for_timeout(100)
                after = ex.evaluate(FRAME_STATE_JS)
                if after == before:
                    problems.append(f"{name}, {label}: moving the slider (value {v0} -> {s.input_value()}) "
                                    "did not change the figure")
                else:
                    problems.append(f"{name}, {label}: the figure changes on an input event but not on an arrow key")
            # back to where it was (the page is shared with the screenshot tests)
            s.evaluate("(e, v) => { e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); }", v0)
        for k in range(frames.count()):
            f = frames.nth(k)
            if f.is_visible() and not f.evaluate(IMG_OK):
                problems.append(f"{name}: after input, frame {k + 1} is broken ({(f.get_attribute('src') or '')[:80]})")
    problems += [f"JS error during the test: {e}" for e in p.visit.page_errors[n_err:]]
    assert not problems, f"{page}:\n  " + "\n  ".join(dict.fromkeys(problems))

