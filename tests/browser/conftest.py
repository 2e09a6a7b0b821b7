"""Fixtures for the browser tests: the built site, served on localhost, driven in headless Chromium.

The site is the build output of ``python3 dev.py book`` (``_build/html``), or the folder named by
the environment variable ``LINFLOW_SITE``. A missing site is a failure, never a skip.

One Chromium per test session (per xdist worker). Each page is loaded once per run for the read-only
checks (PageCache: errors, math, screenshots, dark mode, phone); interactive tests get that page
while it is open, or their own context. Every request to a host other than the local server is
aborted and recorded: the site must work offline.
Screenshots go to ``_build/screenshots`` (override: ``LINFLOW_SCREENSHOTS``).
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sitehelpers import CHROMIUM, CHROMIUM_ARGS, SHOTS, SITE, require_site, site_ok


# ----------------------------------------------------------------------------------------------
# server + browser


class _Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many assets

    def log_message(self, *args):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="session")
def site() -> Path:
    require_site()
    return SITE


@pytest.fixture(scope="session")
def server(site):
    handler = functools.partial(_Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, name="site-server", daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install Debian's chromium "
                    "(`apt-get install chromium`; `python3 dev.py test` does it).", pytrace=False)
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Visit:
    """What one page did while loading."""

    url: str
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    bad_local: list[str] = field(default_factory=list)  # "404 http://127.0.0.1/..."
    failed_local: list[str] = field(default_factory=list)  # request failures on localhost
    external: list[str] = field(default_factory=list)  # "script https://cdn..." (aborted)

    def problems(self) -> list[str]:
        return ([f"JS error: {e}" for e in self.page_errors]
                + [f"console error: {e}" for e in self.console_errors]
                + [f"HTTP {e}" for e in self.bad_local]
                + [f"request failed: {e}" for e in self.failed_local])


class Browse:
    """Opens site pages in fresh contexts of the session browser, offline, recording errors."""

    def __init__(self, browser, base: str):
        self.browser = browser
        self.base = base
        self.contexts = []

    def _local(self, url: str) -> bool:
        return url.startswith(self.base) or urllib.parse.urlsplit(url).scheme in ("data", "blob", "about")

    def new_page(self, *, viewport=(1280, 800), dark=False, scale=1, mobile=False):
        ctx = self.browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=scale,
            is_mobile=mobile, has_touch=mobile, color_scheme="dark" if dark else "light",
            service_workers="block")
        self.contexts.append(ctx)
        if dark:
            ctx.add_init_script("try { localStorage.setItem('theme', 'dark'); localStorage.setItem('mode', 'dark'); } catch (e) {}")
        else:
            ctx.add_init_script("try { localStorage.setItem('theme', 'light'); localStorage.setItem('mode', 'light'); } catch (e) {}")
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        page.set_default_navigation_timeout(90_000)  # a loaded 2-core machine can be slow
        visit = Visit(url="")
        page.visit = visit

        def route(r):
            url = r.request.url
            if self._local(url):
                r.continue_()
            else:
                visit.external.append(f"{r.request.resource_type} {url}")
                r.abort("blockedbyclient")

        # only non-local URLs are intercepted (a regex is matched inside the browser driver, cheap)
        ctx.route(re.compile("^(?!" + re.escape(self.base) + "|data:|blob:|about:)"), route)
        page.on("pageerror", lambda e: visit.page_errors.append(str(e).strip().splitlines()[0][:300]))

        def console(msg):
            if msg.type != "error":
                return
            loc = (msg.location or {}).get("url", "") or ""
            text = msg.text
            # aborted external requests are reported in `external`, not as console errors
            if loc and not self._local(loc):
                return
            if "ERR_BLOCKED_BY_CLIENT" in text or ("Failed to load resource" in text and not loc.startswith(self.base)):
                return
            visit.console_errors.append(f"{text[:300]} ({loc})" if loc else text[:300])

        page.on("console", console)

        def response(resp):
            if resp.url.startswith(self.base) and resp.status >= 400:
                visit.bad_local.append(f"{resp.status} {resp.url.removeprefix(self.base)}")

        page.on("response", response)

        def failed(req):
            if req.url.startswith(self.base):
                visit.failed_local.append(f"{req.url.removeprefix(self.base)} ({req.failure})")

        page.on("requestfailed", failed)
        return page

    def goto(self, page, path: str):
        page.visit.url = path
        page.goto(self.base + path, wait_until="load")
        wait_mathjax(page)
        return page

    def close(self):
        for c in self.contexts:
            try:
                c.close()
            except Exception:
                pass
        self.contexts.clear()


def wait_mathjax(page, timeout_ms: int = 20_000):
    """Wait for MathJax to finish typesetting when it has started; no-op when it never loaded."""
    page.evaluate(
        """(ms) => new Promise((done) => {
            const t0 = Date.now();
            const poll = () => {
              const mj = window.MathJax;
              if (mj && mj.startup && mj.startup.promise) {
                Promise.race([mj.startup.promise, new Promise(r => setTimeout(r, ms))]).then(() => done(true), () => done(false));
              } else if (document.readyState === 'complete' && Date.now() - t0 > 300) {
                done(false);   // no MathJax engine on this page (or it was blocked)
              } else if (Date.now() - t0 > ms) {
                done(false);
              } else { setTimeout(poll, 50); }
            };
            poll();
        })""",
        timeout_ms,
    )


@pytest.fixture
def browse(browser, server):
    b = Browse(browser, server)
    yield b
    b.close()


class PageCache:
    """Each page is loaded once per test run and read by several tests (see pagechecks).

    The first test that needs a page loads it, reads it (read_page), takes the screenshots
    (record_screens) and writes the record as JSON into a folder shared by the xdist workers, under
    a lock: the other worker reads that record instead of loading the page again. An interactive
    test (`loaded`) that comes first gets the freshly read page and leaves it open for the recording.
    A page that fails to load fails its tests without retrying.
    """

    def __init__(self, browse: Browse, shots: Path, shared: Path):
        self.browse, self.shots, self.shared = browse, shots, shared
        self.partial: dict[str, dict] = {}  # read, not yet recorded (page open)
        self.open: dict[str, object] = {}

    def _file(self, path: str, ext: str) -> Path:
        from sitehelpers import page_slug

        return self.shared / f"{page_slug(path)}.{ext}"

    def _open(self, path: str):
        from pagechecks import DESKTOP, read_page

        try:
            page = self.browse.new_page(viewport=DESKTOP)
            self.browse.goto(page, path)
            self.partial[path] = read_page(page)
            self.open[path] = page
            return page
        except Exception as e:  # noqa: BLE001
            self.partial[path] = {"fatal": f"{type(e).__name__}: {e}"}
            return None

    def get(self, path: str) -> dict:
        import fcntl
        import json

        from pagechecks import record_screens
        from sitehelpers import page_slug

        done = self._file(path, "json")
        with open(self._file(path, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                if path not in self.open and path not in self.partial:
                    self._open(path)
                rec = self.partial.pop(path)
                page = self.open.pop(path, None)
                if page is not None:
                    record_screens(page, rec, page_slug(path), self.shots)
                    page.context.close()
                done.write_text(json.dumps(rec))
            elif path in self.open:  # recorded by the other worker: drop our copy
                self.partial.pop(path, None)
                self.open.pop(path).context.close()
            rec = json.loads(done.read_text())
        if "fatal" in rec:
            pytest.fail(f"{path} could not be loaded: {rec['fatal']}", pytrace=False)
        return rec

    def page(self, path: str, browse: Browse):
        """The loaded page for interactive tests: the cached one while open, else a fresh load."""
        if path in self.open:
            return self.open[path]
        if not self._file(path, "json").exists() and path not in self.partial:
            page = self._open(path)
            if page is not None:
                return page
        return browse.goto(browse.new_page(), path)


@pytest.fixture(scope="session")
def _page_cache(browser, server, shots_dir, tmp_path_factory):
    # xdist workers share a folder named by the run's id; without xdist a private one
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if uid:
        shared = Path(tempfile.gettempdir()) / f"linflow-browser-{uid}"
        shared.mkdir(exist_ok=True)
        for old in Path(tempfile.gettempdir()).glob("linflow-browser-*"):  # earlier runs' records
            if old != shared and time.time() - old.stat().st_mtime > 6 * 3600:
                shutil.rmtree(old, ignore_errors=True)
    else:
        shared = tmp_path_factory.mktemp("pages")
    b = Browse(browser, server)
    yield PageCache(b, shots_dir, shared)
    b.close()


@pytest.fixture
def loaded(_page_cache, browse):
    """loaded(page) -> a Playwright page showing it (desktop, light), shared with `visited` when possible.

    Tests that interact must leave the page as they found it where they can (close what they opened)."""
    return lambda path: _page_cache.page(path, browse)


@pytest.fixture
def visited(_page_cache):
    """visited(page) -> dict read off the single load of the page (pagechecks), shared by the workers."""
    return _page_cache.get


@pytest.fixture(scope="session")
def shots_dir():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def pytest_collection_modifyitems(config, items):
    """Mark everything here `browser`; without a built site, keep one test that fails with the build hint."""
    here = Path(__file__).parent
    mine = [it for it in items if Path(str(it.fspath)).is_relative_to(here)]
    for item in mine:
        item.add_marker(pytest.mark.browser)
    if not site_ok():
        drop = [it for it in mine if it.originalname != "test_site_exists"]
        if drop:
            config.hook.pytest_deselected(items=drop)
            keep = set(map(id, drop))
            items[:] = [it for it in items if id(it) not in keep]
