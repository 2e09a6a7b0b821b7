"""Sphinx extension for the book build (listed in ``_config.yml``, ``sphinx.extra_extensions``).

1. **Explorers show their kernel-free face.** At set-up it sets ``LINFLOW_STATIC=1`` in the
   build process; the notebook kernels that myst-nb starts inherit it, so
   :meth:`linflow.widgets.Explorer.show` emits the precomputed HTML slider face instead of
   ipywidgets (whose Python callbacks cannot run on a static site). An explicit
   ``LINFLOW_STATIC`` in the environment wins.
2. **API reference without duplicates.** Where a package re-exports a function under the
   name of one of its submodules (``linflow.bounds.two_layer`` is both a module and the
   Theorem 1 function), sphinx-autoapi would describe the name twice, which ``-W`` turns into
   an error. The submodule's own page is skipped; its public functions stay documented
   where the package re-exports them.
3. **Each script once.** With jupyter-book 1.0.4 every page declared sphinx-thebe's inline
   ``const THEBE_JS_URL = ...`` script twice, which a browser reports as a JavaScript error
   ("Identifier 'THEBE_JS_URL' has already been declared"). Duplicate script entries are
   dropped from each page.
4. **Generated API pages are never excluded.** ``only_build_toc_files`` excludes every source
   file that exists when the build starts and is not in ``_toc.yml``; a ``book/autoapi`` tree
   left by an earlier or a concurrent build would be excluded, and book/api.md's toctree
   would break. Those entries are removed from ``exclude_patterns`` again (sphinx-autoapi
   regenerates the tree at every build).
"""
from __future__ import annotations

import importlib
import inspect
import os

from .. import __version__


def _shadowed(name):
    """True for a submodule ``pkg.x`` when ``pkg.x`` (the attribute) is not that module."""
    parent, _, leaf = name.rpartition(".")
    if not parent:
        return False
    try:
        pkg = importlib.import_module(parent)
        member = getattr(pkg, leaf)
    except Exception:  # noqa: BLE001 - a module that does not import is documented as is
        return False
    return not inspect.ismodule(member)


def skip_member(app, what, name, obj, skip, options):
    """``autoapi-skip-member`` handler: skip submodules shadowed by a re-exported name."""
    if what in ("module", "package") and _shadowed(name):
        return True
    return None


def _script_key(js):
    attrs = getattr(js, "attributes", {}) or {}
    name = getattr(js, "filename", str(js)) or ""  # an inline script is registered once as None, once as ""
    return (name, tuple(sorted((k, str(v)) for k, v in attrs.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree):
    """``html-page-context`` handler: keep the first of identical script entries."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = _script_key(js)
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    if len(kept) != len(scripts):
        context["script_files"] = kept


def keep_autoapi_pages(app, config):
    """``config-inited`` handler (after sphinx-external-toc): un-exclude the autoapi tree."""
    root = str(getattr(config, "autoapi_root", "") or "").strip("/")
    if not root:
        return
    prefix = root + "/"
    patterns = list(config.exclude_patterns)
    kept = [p for p in patterns if not str(p).startswith(prefix)]
    if len(kept) != len(patterns):
        config.exclude_patterns = kept


def setup(app):
    os.environ.setdefault("LINFLOW_STATIC", "1")
    if app is not None:
        app.connect("html-page-context", dedupe_scripts)
        app.connect("config-inited", keep_autoapi_pages, priority=950)
        try:  # list this extension after autoapi.extension, which defines the event
            app.connect("autoapi-skip-member", skip_member)
        except Exception:  # noqa: BLE001 - autoapi not loaded: nothing to skip
            pass
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
