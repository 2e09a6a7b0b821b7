"""Static helpers shared by the browser tests: where the site is, its pages, links and ids."""
from __future__ import annotations

import functools
import html.parser
import os
import posixpath
import re
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("LINFLOW_SITE") or ROOT / "_build" / "html").resolve()
SHOTS = Path(os.environ.get("LINFLOW_SCREENSHOTS") or ROOT / "_build" / "screenshots").resolve()
CHROMIUM = os.environ.get("LINFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
MISSING = "site-missing"
MISSING_MSG = (f"The built site is missing: {SITE}/index.html does not exist. "
               "Build it first with `python3 dev.py book` (or point LINFLOW_SITE at a built site).")
# Output of these folders is not a page of the book.
NOT_PAGES = ("_static", "_sources", "_images", "_notebooks", "_downloads", "reports", "lite", "autoapi")


def site_ok() -> bool:
    return (SITE / "index.html").is_file()


def require_site():
    if not site_ok():
        pytest.fail(MISSING_MSG, pytrace=False)


# ----------------------------------------------------------------------------------------------
# static HTML parsing (no browser): page discovery, links, ids


class _Collect(html.parser.HTMLParser):
    """Collects ids/names, hrefs/srcs (with the tag and attributes) of one HTML file."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, dict]] = []  # (tag, attrs)
        self.refresh: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        for key in ("id", "name") if tag in ("a", "span", "div", "section") else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if tag in ("a", "link", "img", "script", "source", "iframe") and (a.get("href") or a.get("src")):
            self.links.append((tag, a))
        if tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            m = re.search(r"url=(.+)$", a.get("content", ""), re.I)
            if m:
                self.refresh = m.group(1).strip().strip("'\"")

    handle_startendtag = handle_starttag


@functools.lru_cache(maxsize=None)
def parse_html(path: Path) -> _Collect:
    p = _Collect()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p


def rel(path: Path) -> str:
    return path.relative_to(SITE).as_posix()


def all_html() -> list[str]:
    """Every HTML file of the site (relative paths), static folders excluded."""
    if not site_ok():
        return []
    out = []
    for p in sorted(SITE.rglob("*.html")):
        r = rel(p)
        if r.split("/")[0] in ("_static", "_sources"):
            continue
        out.append(r)
    return out


def is_local(url: str) -> bool:
    s = urllib.parse.urlsplit(url)
    return not s.scheme and not s.netloc


def resolve(page: str, url: str) -> tuple[str, str]:
    """Site-relative target file and fragment of a local link from page (both posix)."""
    s = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(s.path)
    if path:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
        if path.endswith("/"):
            target += "/index.html"
    else:
        target = page
    return target, urllib.parse.unquote(s.fragment)


def root_page() -> str:
    """The landing page: index.html or where its refresh redirect points."""
    idx = parse_html(SITE / "index.html")
    if idx.refresh and is_local(idx.refresh):
        t, _ = resolve("index.html", idx.refresh)
        if (SITE / t).is_file():
            return t
    return "index.html"


@functools.lru_cache(maxsize=None)
def toc_pages() -> list[str]:
    """Pages of the book: the sidebar (toc) of the landing page, plus every book/*.html."""
    if not site_ok():
        return []
    found: list[str] = []
    start = root_page()
    found.append(start)
    for tag, a in parse_html(SITE / start).links:
        href = a.get("href", "")
        if tag != "a" or not href or not is_local(href) or "reference" not in a.get("class", ""):
            continue
        t, _ = resolve(start, href)
        if t.endswith(".html") and (SITE / t).is_file() and t.split("/")[0] not in NOT_PAGES \
                and "/autoapi/" not in t and t not in ("genindex.html", "search.html", "py-modindex.html"):
            found.append(t)
    found += [rel(p) for p in sorted((SITE / "book").glob("*.html"))] if (SITE / "book").is_dir() else []
    seen, out = set(), []
    for t in found:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def page_params(pages: list[str]) -> list:
    """pytest params for pages, or one param that fails with the build hint when there is no site."""
    if not site_ok():
        return [pytest.param(MISSING, id=MISSING)]
    return [pytest.param(p, id=p.removesuffix(".html")) for p in pages]


def page_slug(page: str) -> str:
    p = page.removesuffix(".html")
    p = p.removeprefix("book/")
    return p.replace("/", "__")


def page_has(page: str, *needles: str, article_only: bool = True) -> bool:
    """Whether the page's HTML (by default only its <article>, not header or sidebar) contains a needle."""
    text = (SITE / page).read_text(encoding="utf-8", errors="replace")
    if article_only and "<article" in text:
        text = text[text.index("<article"): text.rindex("</article>") if "</article>" in text else None]
    return any(n in text for n in needles)


