"""Links of the built site: internal links and anchors resolve; launch and download buttons point at files.

These read the HTML files directly (no browser needed), so they cover every page of the site.
"""
from __future__ import annotations

import json
import re
import sys
import urllib.parse
from pathlib import Path

import pytest

from sitehelpers import (ROOT, SITE, all_html, is_local, page_params, parse_html, require_site, resolve,
                         site_ok, toc_pages)

pytestmark = pytest.mark.browser

ALL = page_params(all_html())
TOC = page_params(toc_pages())


def _ids(target: str) -> set[str]:
    return parse_html(SITE / target).ids


@pytest.mark.parametrize("page", ALL)
def test_internal_links_resolve(page):
    """Every local <a href>, <img src>, <script src>, <link href> of the page exists; #anchors exist."""
    require_site()
    broken = []
    doc = parse_html(SITE / page)
    for tag, a in doc.links:
        url = a.get("href") if tag in ("a", "link") else a.get("src")
        if not url or not is_local(url) or url.startswith(("#!", "javascript:")):
            continue
        if tag == "link" and a.get("rel", "") in ("preconnect", "dns-prefetch"):
            continue
        target, frag = resolve(page, url)
        where = f'<{tag} {"href" if tag in ("a", "link") else "src"}="{url}">'
        if target.startswith("..") or target.startswith("/"):
            broken.append(f"{where}: points outside the site")
            continue
        path = SITE / target
        if path.is_dir():
            path = path / "index.html"
            target = target.rstrip("/") + "/index.html"
        if not path.is_file():
            broken.append(f"{where}: {target} does not exist")
            continue
        if frag and tag == "a" and path.suffix == ".html" and frag not in _ids(target):
            broken.append(f"{where}: no id '{frag}' in {target}")
    if doc.refresh and is_local(doc.refresh):
        t, _ = resolve(page, doc.refresh)
        if not (SITE / t).is_file():
            broken.append(f"meta refresh to {doc.refresh}: {t} does not exist")
    assert not broken, f"{page}: {len(broken)} broken link(s)\n  " + "\n  ".join(dict.fromkeys(broken))


# ------------------------------------------------------------------------------------------------
# launch (Binder, Colab) and download (.ipynb, .md) buttons

BINDER = re.compile(r"^https?://[^/]*binder[^/]*/v2/gh/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<ref>[^?#]+)(?:\?(?P<q>.*))?$")
COLAB = re.compile(r"^https?://colab\.research\.google\.com/github/(?P<owner>[^/]+)/(?P<repo>[^/]+)/blob/(?P<ref>[^/]+)/(?P<path>[^?#]+)")


def _launch_links(page: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"binder": [], "colab": [], "download": []}
    for tag, a in parse_html(SITE / page).links:
        href = a.get("href", "")
        if tag != "a" or not href:
            continue
        cls, title = a.get("class", ""), a.get("title", "").lower()
        if BINDER.match(href) or "launch on binder" in title:
            out["binder"].append(href)
        elif COLAB.match(href) or "launch on colab" in title:
            out["colab"].append(href)
        elif "btn-download" in cls or "download" in title or "download" in a:
            out["download"].append(href)
    return out


def _repo_file(path: str, ref: str) -> list[Path]:
    """Where a file a launch URL names can be: the repository (main branch) or the published site (other branches)."""
    path = urllib.parse.unquote(path).lstrip("/")
    return [ROOT / path, SITE / path, SITE / "_notebooks" / Path(path).name]


def _exists(cands: list[Path]) -> Path | None:
    return next((c for c in cands if c.is_file()), None)


@pytest.mark.parametrize("page", TOC)
def test_launch_and_download_links(page):
    """Binder, Colab and download links name files that exist; Colab and the notebook download get an .ipynb."""
    require_site()
    links = _launch_links(page)
    problems = []
    for url in links["binder"]:
        m = BINDER.match(url)
        if not m:
            problems.append(f"Binder link not understood: {url}")
            continue
        q = urllib.parse.parse_qs(m.group("q") or "")
        target = (q.get("urlpath") or q.get("labpath") or q.get("filepath") or [""])[0]
        target = re.sub(r"^(lab/tree|tree|notebooks|lab|doc/tree)/", "", target)
        if not target:
            problems.append(f"Binder link opens no file: {url}")
        elif not _exists(_repo_file(target, m.group("ref"))):
            problems.append(f"Binder link names {target}, which is not in the repository: {url}")
        if not any((ROOT / d).exists() for d in ("binder", ".binder", "environment.yml", "requirements.txt")):
            problems.append("Binder has no environment: no binder/, .binder/, environment.yml or requirements.txt")
    for url in links["colab"]:
        m = COLAB.match(url)
        if not m:
            problems.append(f"Colab link not understood: {url}")
            continue
        path = m.group("path")
        if not path.endswith(".ipynb"):
            problems.append(f"Colab link names {path}, not an .ipynb (Colab cannot open it): {url}")
        elif not _exists(_repo_file(path, m.group("ref"))):
            problems.append(f"Colab link names {path}, which is not in the repository or site: {url}")
    for url in links["download"]:
        if not is_local(url):
            continue
        target, _ = resolve(page, url)
        f = SITE / target
        if not f.is_file():
            problems.append(f"download link {url}: {target} does not exist in the site")
            continue
        if f.suffix == ".ipynb":
            try:
                nb = json.loads(f.read_text(encoding="utf-8"))
                assert nb.get("nbformat") == 4 and isinstance(nb.get("cells"), list)
            except Exception as e:  # noqa: BLE001
                problems.append(f"download link {url}: {target} is not a valid notebook ({e})")
    downloads = [u for u in links["download"] if is_local(u)]
    if page.startswith("book/") and (links["binder"] or links["colab"]) and not any(u.endswith(".ipynb") for u in downloads):
        problems.append("no .ipynb download link on a page with launch buttons")
    assert not problems, f"{page}:\n  " + "\n  ".join(dict.fromkeys(problems))


def test_launch_buttons_follow_the_setting():
    """The chapters carry launch buttons (Binder/Colab) when the publishing setting knows the
    repository (tools/publish.py), and none when it does not."""
    require_site()
    assert site_ok()
    sys.path.insert(0, str(ROOT / "tools"))
    import publish

    pages = [p for p in toc_pages() if p.startswith("book/")]
    with_launch = [p for p in pages if any(_launch_links(p)[k] for k in ("binder", "colab"))]
    if publish.site().repository is None:
        assert with_launch == [], "launch buttons to a repository the setting does not know"
    else:
        assert with_launch, "no chapter has a Binder or Colab launch button"


# ------------------------------------------------------------------------------------------------
# cross-references and citations that Sphinx could not resolve (left as plain text)

# Python-domain references (class="xref py ...") are left out: third-party types are unlinked on
# purpose (nitpick_ignore_regex), and the nitpicky build (-n -W) reports wrong linflow names.
UNRESOLVED = re.compile(r'(<a\b[^>]*>\s*)?<(span|code) class="xref (?!py\b)[^"]*"[^>]*>(.*?)</\2>', re.S)
EMPTY_CITE = re.compile(r'<span class="bibtex-citation"[^>]*>\s*\[\s*\]\s*</span>')
TAGS = re.compile(r"<[^>]+>")


@pytest.mark.parametrize("page", ALL)
def test_references_resolve(page):
    """No cross-reference ({ref}, {doc}, {numref}, {prf:ref}, MyST links) left unresolved (shown as its
    bare label) and no empty citation '[]'."""
    require_site()
    text = (SITE / page).read_text(encoding="utf-8", errors="replace")
    if "<article" in text:
        text = text[text.index("<article"):]
    problems = []
    for m in UNRESOLVED.finditer(text):
        if m.group(1) is None:
            problems.append(f"unresolved reference: {TAGS.sub('', m.group(3)).strip()[:80]!r}")
    n = len(EMPTY_CITE.findall(text))
    if n:
        problems.append(f"{n} empty citation(s) '[]' (key missing from the .bib file, or no bibliography)")
    assert not problems, f"{page}:\n  " + "\n  ".join(dict.fromkeys(problems))
