"""What the browser tests read off one loaded page: text and math, screenshots, contrast, overflow.

A page is loaded once per test run (conftest.PageCache, shared by the xdist workers) and read in
this order: load errors, text and math (read_page); then desktop screenshot, light contrast, the
math blocks and code cells wider than their box, the inline formulas and tables cut off, and the
faces of the first figures -> dark mode (theme switch), screenshot, contrast and the figures'
faces again -> phone width (390 px), screenshot, sideways overflow and the wide or cut-off math,
code and tables again (record_screens). Each test asserts on its part of the record.
"""
from __future__ import annotations

import os
import traceback
from pathlib import Path

DESKTOP = (1280, 800)
PHONE = (390, 844)
MAX_HEIGHT = int(os.environ.get("LINFLOW_SCREENSHOT_MAX", "12000"))  # px; long pages are cut
DARK_MAX_HEIGHT = 2400  # enough to judge dark mode; the contrast check covers the whole page
MIN_CONTRAST = 4.5  # WCAG AA for body text (dark mode)
LIGHT_MIN_CONTRAST = 3.0  # light mode is the theme's tested default: only gross failures are flagged


def shoot(p, path, max_height=None):
    """Screenshot of the page from the top, full length up to max_height px (LINFLOW_SCREENSHOT_MAX)."""
    max_height = min(max_height or MAX_HEIGHT, MAX_HEIGHT)
    p.evaluate("document.fonts ? document.fonts.ready.then(() => true) : true")
    h = p.evaluate("Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
    w = p.viewport_size["width"]
    p.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": w, "height": min(h, max_height)})


def to_dark(p) -> str:
    """Switch to dark with the theme's own button (light -> dark -> auto); JS fallback. Returns how."""
    button = p.locator(".theme-switch-button").first
    for _ in range(3):
        if p.evaluate("document.documentElement.dataset.theme") == "dark":
            return "button"
        if not button.count() or not button.is_visible():
            break
        button.click()
    p.evaluate("""() => { localStorage.setItem('theme', 'dark'); document.documentElement.dataset.theme = 'dark';
                          document.documentElement.dataset.mode = 'dark'; }""")
    return "script"


READ_PAGE_JS = r"""
() => {
  const root = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .linenos, .MathJax_Preview, mjx-assistive-mml, .cell_input';
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (el && !el.closest(skip)) parts.push(n.nodeValue);
  }
  const math = Array.from(root.querySelectorAll('.math'));
  const unrendered = math.filter(m => !m.querySelector('mjx-container') && !m.closest('mjx-container'))
                         .map(m => m.textContent.trim().slice(0, 80));
  return {
    text: parts.join(''),
    mathNodes: math.length,
    containers: root.querySelectorAll('mjx-container').length,
    unrendered: unrendered,
    merrors: (() => {
      // TeX errors (merror) and undefined macros (noundefined draws them as red mtext)
      const out = Array.from(document.querySelectorAll('mjx-merror')).map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120));
      try {
        for (const item of window.MathJax.startup.document.math) {
          const mml = window.MathJax.startup.toMML(item.root);
          if (/<merror|mathcolor="red"/.test(mml)) out.push('in ' + String(item.math).trim().slice(0, 100));
        }
      } catch (e) {}
      return Array.from(new Set(out));
    })(),
    mathjax: !!(window.MathJax && window.MathJax.startup),
    mathjaxSrc: Array.from(document.scripts).map(s => s.src).filter(s => /mathjax/i.test(s)),
    theme: document.documentElement.dataset.theme || '',
  };
}
"""

OVERFLOW_JS = r"""
() => {
  const W = document.documentElement.clientWidth;
  const sw = document.documentElement.scrollWidth;
  if (sw <= W + 1) return {sw, W, culprits: []};
  // what sticks out on the right, unless a scrolling/clipping box around it contains it
  const clipped = (el) => { for (let q = el; q && q !== document.body; q = q.parentElement) {
      const cs = getComputedStyle(q);
      if (cs.overflowX !== 'visible' || cs.position === 'fixed') return true; } return false; };
  const skip = (el) => !!el.closest('.skip-link, .bd-sidebar-primary, .bd-sidebar-secondary, .pst-async-banner-revealer');
  const describe = (el) => `<${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? ' class="' + el.className.slice(0, 40) + '"' : ''}>`;
  const culprits = [];
  const rg = document.createRange();
  const tw = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = tw.nextNode(); n && culprits.length < 6; n = tw.nextNode()) {
    if (!n.nodeValue.trim()) continue;
    const el = n.parentElement;
    if (skip(el) || clipped(el)) continue;  // the text's own box may scroll it
    rg.selectNodeContents(n);
    const r = rg.getBoundingClientRect();
    if (r.right > W + 1) culprits.push(`text in ${describe(el)} reaches ${Math.round(r.right)} px: "${n.nodeValue.trim().slice(0, 50)}"`);
  }
  for (const el of document.querySelectorAll('article *')) {
    if (culprits.length >= 8) break;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= W + 1 || skip(el) || clipped(el.parentElement)) continue;
    if (el.parentElement && el.parentElement.getBoundingClientRect().right > W + 1 && !clipped(el.parentElement.parentElement)) continue;
    culprits.push(`${describe(el)} reaches ${Math.round(r.right)} px: "${(el.textContent || '').trim().slice(0, 50)}"`);
  }
  return {sw, W, culprits};
}
"""

CONTRAST_JS = r"""
(minRatio) => {
  const cv = document.createElement('canvas'); cv.width = cv.height = 1;
  const cx = cv.getContext('2d', {willReadFrequently: true});
  const rgba = (c) => {            // any CSS colour -> [r, g, b, a] (0..255, a 0..1)
    cx.clearRect(0, 0, 1, 1); cx.fillStyle = '#000'; cx.fillStyle = c; cx.fillRect(0, 0, 1, 1);
    const d = cx.getImageData(0, 0, 1, 1).data; return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, bot) => {     // composite top over opaque bot
    const a = top[3]; return [0, 1, 2].map(i => top[i] * a + bot[i] * (1 - a)).concat([1]);
  };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                       return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const canvasBg = () => {
    let c = rgba(getComputedStyle(document.documentElement).backgroundColor);
    if (c[3] === 0) c = rgba(getComputedStyle(document.body).backgroundColor);
    return c[3] === 0 ? [255, 255, 255, 1] : over(c, [255, 255, 255, 1]);
  };
  const base = canvasBg();
  const bgOf = (el) => {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = base;
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const root = document.querySelector('article.bd-article') || document.body;
  // the explorers' own text (label, value, title, note) too: their panel has its own background
  const sel = 'p, li, dt, dd, td, th, h1, h2, h3, h4, figcaption, .admonition-title, blockquote, pre, .caption-text, a, mjx-container, '
            + '.linflow-explorer label, .linflow-explorer output, .linflow-title, .linflow-note';
  const bad = []; let checked = 0;
  for (const el of root.querySelectorAll(sel)) {
    if (checked >= 400) break;
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.nodeValue.trim()) || el.tagName === 'MJX-CONTAINER';
    if (!own) continue;
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden' || parseFloat(cs.opacity) === 0) continue;
    if (el.closest('.toggle-hidden, details:not([open])')) continue;
    checked++;
    const bg = bgOf(el);
    const fg = over(rgba(cs.color), bg);
    const q = ratio(fg, bg);
    if (q < minRatio) bad.push({q: Math.round(q * 100) / 100, tag: el.tagName.toLowerCase(), cls: String(el.className).slice(0, 40),
                               fg: cs.color, bg: 'rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + ')',
                               text: el.textContent.trim().slice(0, 40)});
  }
  const bodyFg = over(rgba(getComputedStyle(root).color), bgOf(root));
  return {theme: document.documentElement.dataset.theme || '', mode: document.documentElement.dataset.mode || '',
          bgLum: lum(bgOf(root)), bodyRatio: ratio(bodyFg, bgOf(root)), checked, bad};
}
"""


WIDE_JS = r"""
() => {
  // every display-math block and code block of the article whose content is wider than its
  // box (it scrolls or is cut off), and every inline formula and table that is cut off: what it
  // is, where, how wide it is and how wide its box is
  const texOf = new Map();
  try { for (const it of window.MathJax.startup.document.math) texOf.set(it.typesetRoot, String(it.math)); } catch (e) {}
  const shown = (el) => { const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && !el.closest('.toggle-hidden, details:not([open])'); };
  const where = (el) => {
    const box = el.closest('.proof, .admonition, .exercise, .solution, .prf-definition, .prf-theorem, .prf-lemma');
    const title = box && box.querySelector('.prf-title, .admonition-title, .exercise-title, .solution-title');
    let h = null;   // the heading of the nearest section that has one (directives nest sections)
    for (let sec = el.closest('section'); sec && !h; sec = sec.parentElement && sec.parentElement.closest('section'))
      h = sec.querySelector(':scope > h1, :scope > h2, :scope > h3, :scope > h4');
    const clean = (t) => (t || '').replace(/[#¶]/g, '').replace(/\s+/g, ' ').trim().slice(0, 60);
    return (title ? clean(title.textContent) + ' in ' : '') + '§ "' + clean(h && h.textContent) + '"';
  };
  const root = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const out = []; let nMath = 0, nCode = 0;
  for (const el of root.querySelectorAll('div.math')) {
    const c = el.querySelector('mjx-container');
    if (!c || !shown(el)) continue;
    nMath++;
    const inner = c.querySelector('mjx-math') || c;
    const need = Math.max(c.scrollWidth, inner.getBoundingClientRect().width);
    const have = el.clientWidth;
    if (need > have + 1) out.push({kind: 'math', need: Math.round(need), have: Math.round(have), where: where(el),
      id: el.id || '', text: (texOf.get(c) || el.textContent).replace(/\s+/g, ' ').trim().slice(0, 100)});
  }
  for (const el of root.querySelectorAll('div.highlight pre')) {
    if (!shown(el)) continue;
    nCode++;
    if (el.scrollWidth > el.clientWidth + 1) {
      const lines = el.textContent.split('\n');
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
      const kind = el.closest('.cell_input') ? 'code cell' : el.closest('.cell_output') ? 'cell output' : 'code block';
      out.push({kind, need: el.scrollWidth, have: el.clientWidth,
        where: where(el), id: '', text: `${longest.length} characters: ${longest.trim().slice(0, 90)}`});
    }
  }
  // inline formulas and tables: cut off when they reach past their text column (the block they
  // sit in, and the article) without a box that scrolls them, or scrolling inside a box that
  // itself reaches past the column
  const colRight = root.getBoundingClientRect().right;
  const columnOf = (el) => {
    let b = el.parentElement;
    while (b && b !== root && getComputedStyle(b).display.startsWith('inline')) b = b.parentElement;
    const r = b.getBoundingClientRect(), cs = getComputedStyle(b);
    return Math.min(r.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth), colRight);
  };
  const scroller = (el) => {      // el itself or an ancestor inside the article that scrolls sideways
    for (let q = el; q && q !== root; q = q.parentElement) {
      const ox = getComputedStyle(q).overflowX;
      if (ox === 'auto' || ox === 'scroll') return q;
    }
    return null;
  };
  const cut = (el, right) => {
    const r = el.getBoundingClientRect();
    if (r.right <= right + 1) return null;
    const s = scroller(el);
    if (s && s.getBoundingClientRect().right <= right + 1) return null;   // scrolls inside the column
    return {need: Math.round(r.right - r.left), have: Math.round(right - r.left)};
  };
  let nInline = 0, nTable = 0;
  for (const c of root.querySelectorAll('mjx-container:not([display="true"])')) {
    if (!shown(c) || c.closest('div.math')) continue;
    nInline++;
    const bad = cut(c, columnOf(c));
    if (bad) out.push({kind: 'inline math', need: bad.need, have: bad.have, where: where(c), id: '',
      text: (texOf.get(c) || c.textContent).replace(/\s+/g, ' ').trim().slice(0, 100)});
  }
  for (const tb of root.querySelectorAll('table')) {
    if (!shown(tb)) continue;
    nTable++;
    const bad = cut(tb, colRight);
    if (bad) out.push({kind: 'table', need: bad.need, have: bad.have, where: where(tb), id: tb.id || '',
      text: (tb.querySelector('tr') || tb).textContent.replace(/\s+/g, ' ').trim().slice(0, 100)});
  }
  return {math: nMath, code: nCode, inline: nInline, tables: nTable, wide: out};
}
"""


FIGURES = "article div.cell_output img, article .linflow-explorer img.linflow-frame"
MAX_FIGURES = 4   # figures measured per page (element screenshots cost)


def figure_faces(p) -> list[dict]:
    """What the reader sees of the page's first figures and explorer frames: the mean relative
    luminance of a 6 px band inside each image's border, read off an element screenshot (so
    CSS filters count), with the image's alt text and source."""
    import io

    import matplotlib.image as mpimg
    import numpy as np

    out = []
    imgs = p.locator(FIGURES)
    for i in range(min(imgs.count(), MAX_FIGURES)):
        img = imgs.nth(i)
        if not img.is_visible():
            continue
        img.scroll_into_view_if_needed()
        px = mpimg.imread(io.BytesIO(img.screenshot(animations="disabled")), format="png")[..., :3]
        band = np.concatenate([px[:6].reshape(-1, 3), px[-6:].reshape(-1, 3),
                               px[:, :6].reshape(-1, 3), px[:, -6:].reshape(-1, 3)])
        lin = np.where(band <= 0.03928, band / 12.92, ((band + 0.055) / 1.055) ** 2.4)
        lum = float((lin @ np.array([0.2126, 0.7152, 0.0722])).mean())
        src = img.get_attribute("src") or ""
        out.append({"lum": round(lum, 3), "alt": (img.get_attribute("alt") or "")[:60],
                    "src": src[:60] if not src.startswith("data:") else "data:..."})
    return out


PANELS_JS = r"""
() => Array.from(document.querySelectorAll('article .linflow-explorer')).map((ex) => {
  // the explorer's panel and every box around it up to its cell output: their painted colours
  const boxes = [];
  for (let e = ex; e && !e.matches('div.cell_output'); e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (!/rgba\(.*,\s*0\)$/.test(c) && c !== 'transparent') boxes.push(c);
  }
  return boxes;
})
"""


def _luminance(css: str) -> float:
    """Relative luminance of a CSS rgb()/rgba() colour."""
    import re

    r, g, b = (float(x) / 255 for x in re.findall(r"[\d.]+", css)[:3])
    f = (lambda v: v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4)
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)


def explorer_panels(p) -> list[float]:
    """The lightest box of each explorer panel (the panel and what wraps it in its cell output)."""
    return [round(max(map(_luminance, boxes), default=0.0), 3) for boxes in p.evaluate(PANELS_JS)]


def _stage(rec: dict, name: str, fn):
    try:
        rec[name] = fn()
    except Exception as e:  # noqa: BLE001 - reported by the test that reads this stage
        rec[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                     "trace": traceback.format_exc(limit=3)}


def read_page(p) -> dict:
    """Text, math and load errors of the freshly loaded page p."""
    rec: dict = {}
    _stage(rec, "info", lambda: p.evaluate(READ_PAGE_JS))
    rec["load"] = {"problems": p.visit.problems(), "external": list(p.visit.external)}
    return rec


def record_screens(p, rec: dict, slug: str, shots: Path) -> dict:
    """Desktop (light) -> dark -> phone on the loaded page p (desktop size, light): screenshots and checks."""
    visit = p.visit
    n_err = len(visit.page_errors)

    def desktop():
        p.evaluate("window.scrollTo(0, 0)")  # interactive tests may have scrolled
        shoot(p, shots / f"{slug}-desktop.png")
        res = {"contrast": p.evaluate(CONTRAST_JS, LIGHT_MIN_CONTRAST), "shot": str(shots / f"{slug}-desktop.png"),
               "wide": p.evaluate(WIDE_JS), "figures": figure_faces(p)}
        p.evaluate("window.scrollTo(0, 0)")
        return res

    def dark():
        how = to_dark(p)
        stored = p.evaluate("localStorage.getItem('theme')")
        p.wait_for_timeout(150)  # colour transitions
        shoot(p, shots / f"{slug}-dark.png", max_height=DARK_MAX_HEIGHT)
        res = p.evaluate(CONTRAST_JS, MIN_CONTRAST)
        figs = figure_faces(p)
        p.evaluate("window.scrollTo(0, 0)")
        return {"how": how, "stored": stored, "contrast": res, "shot": str(shots / f"{slug}-dark.png"),
                "errors": visit.page_errors[n_err:], "figures": figs, "panels": explorer_panels(p)}

    def phone():
        p.evaluate("""() => { localStorage.setItem('theme', 'light'); document.documentElement.dataset.theme = 'light';
                              document.documentElement.dataset.mode = 'light'; }""")
        p.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
        p.wait_for_timeout(200)  # re-layout
        shoot(p, shots / f"{slug}-phone.png")
        return {"overflow": p.evaluate(OVERFLOW_JS), "shot": str(shots / f"{slug}-phone.png"),
                "article": p.locator("article").first.is_visible(), "wide": p.evaluate(WIDE_JS)}

    _stage(rec, "desktop", desktop)
    _stage(rec, "dark", dark)
    _stage(rec, "phone", phone)
    return rec
