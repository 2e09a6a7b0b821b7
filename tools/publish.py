#!/usr/bin/env python3
"""Where the course is published, and everything that derives from it.

    python3 tools/publish.py [--check]      # rewrite (or only check) the install cells

The publishing setting says where the course lives: the repository (for the Binder, Colab
and repository buttons) and the site (the install cells fetch linflow's wheel there).

* ``_config.yml`` may name them::

      repository:
        url: https://github.com/ORG/REPO       # optional
        branch: main
      html:
        baseurl: https://ORG.github.io/REPO/   # optional

* When ``repository.url`` is absent (or empty), it is **derived from the clone**:
  ``git remote get-url origin`` in its https form (``https://github.com/ORG/REPO(.git)``) or
  its ssh forms (``git@github.com:ORG/REPO.git``, ``ssh://git@github.com/ORG/REPO.git``).
  When ``html.baseurl`` is absent, it is the repository's GitHub Pages address,
  ``https://ORG.github.io/REPO/`` (``https://ORG.github.io/`` for the repository
  ``ORG.github.io``).
* With neither a setting nor a GitHub ``origin``, the site is built **without** launch and
  repository buttons (no link to a repository that may not exist), the build says so in one
  warning line, and the install cells tell the reader to install linflow from their clone.

This module is also the Sphinx extension that applies the setting (``_config.yml`` lists it in
``sphinx.local_extensions``): at ``config-inited`` it sets the theme's repository URL, branch,
buttons and launch buttons, and ``html_baseurl``, from :func:`site`, whatever Jupyter Book's
defaults say. ``tools/postbuild.py`` builds linflow's own wheel into the site
(``_static/wheels/linflow-VERSION-py3-none-any.whl``), and every install cell (book pages,
generated notebooks, student assignments) installs that wheel from the site. linflow is not
on the package index: ``pip install linflow`` would install nothing, or someone else's
package. ``dev.py book`` runs this script before building, so changing the setting (or the
remote) and rebuilding updates every install cell; ``--check`` fails if one is stale.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = "_static/wheels"
# a code cell of a MyST page that installs linflow (the build skips it: skip-execution)
CELL_RE = re.compile(r"```\{code-cell\}[^\n]*\n:tags: \[[^\]\n]*skip-execution[^\]\n]*\]\n(?:(?!```).)*?"
                     r"pip install(?:(?!```).)*?linflow(?:(?!```).)*?```", re.S)
# a clone command in a page ("git clone https://github.com/ORG/REPO && cd REPO")
CLONE_RE = re.compile(r"git clone (-b [\w.-]+ )?(?:https://github\.com/[\w.-]+/[\w.-]+?|<URL of your copy> linflow)"
                      r" && cd [\w.-]+")


#: the forms of a GitHub remote: https (optionally .git, trailing /), scp-like ssh, ssh:// URL
REMOTE_RE = re.compile(r"(?:https://(?:[^@/\s]+@)?github\.com/|git@github\.com:|ssh://git@github\.com(?::\d+)?/)"
                       r"(?P<org>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?")
REPO_RE = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+")
#: what the install cell says where the setting names no site to install linflow from
NO_SITE = ("This copy of the course names no site to fetch the package from: no html.baseurl, "
           "no GitHub origin. In your clone of the course, `pip install -e .` installs linflow")


def _no_site_lines(extra: str) -> list[str]:
    """The install cell's ``raise`` where there is no site, in lines that fit a page."""
    import textwrap

    text = NO_SITE + (f"; this page also needs `pip install {extra.replace(chr(34), '')}`."
                      if extra else ".")
    # commands in backticks stay on one line (their spaces are protected while wrapping)
    text = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)
    parts = [s.replace("\0", " ") for s in textwrap.wrap(text, 66, drop_whitespace=False,
                                                         break_on_hyphens=False)]
    return ["    raise ModuleNotFoundError("] + [f"        {s!r}" for s in parts[:-1]] + [f"        {parts[-1]!r})"]


#: the clone command a page shows where the setting names no repository
NO_REPO_CLONE = "<URL of your copy> linflow"


@dataclass(frozen=True)
class Site:
    """The publishing setting (``_config.yml``, else derived from the clone) and the package version.

    ``repository`` and ``baseurl`` are ``None`` when neither the setting nor the clone's
    ``origin`` gives them; ``source`` says where ``repository`` came from."""

    repository: str | None      # https://github.com/ORG/REPO
    branch: str
    baseurl: str | None         # https://ORG.github.io/REPO/ (ends with "/")
    version: str
    source: str = "config"      # "config", "origin" or "none"

    @property
    def wheel_name(self) -> str:
        return f"linflow-{self.version}-py3-none-any.whl"

    @property
    def wheel_url(self) -> str | None:
        return f"{self.baseurl}{WHEELS}/{self.wheel_name}" if self.baseurl else None


def github_repository(remote: str) -> str | None:
    """``https://github.com/ORG/REPO`` for a GitHub remote URL (https or ssh form), else None."""
    m = REMOTE_RE.fullmatch(remote.strip())
    return f"https://github.com/{m['org']}/{m['repo']}" if m else None


def pages_url(repository: str) -> str:
    """The GitHub Pages address of a repository: ``https://ORG.github.io/REPO/``
    (``https://ORG.github.io/`` for the user site ``ORG/ORG.github.io``)."""
    org, repo = repository.removeprefix("https://github.com/").split("/")
    if repo.lower() == f"{org.lower()}.github.io":
        return f"https://{org.lower()}.github.io/"
    return f"https://{org.lower()}.github.io/{repo}/"


def origin_url(root: Path) -> str | None:
    """``git remote get-url origin`` of the clone at ROOT (None outside a clone or without origin)."""
    if not (root / ".git").exists():
        return None
    try:
        r = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def site(root: Path = ROOT) -> Site:
    """Read the setting, deriving what it leaves out from the clone's origin; a malformed
    value that _config.yml does set is an error that names the key."""
    import yaml

    cfg = yaml.safe_load((root / "_config.yml").read_text()) or {}
    repo = (cfg.get("repository") or {}).get("url") or None
    branch = (cfg.get("repository") or {}).get("branch") or "main"
    base = (cfg.get("html") or {}).get("baseurl") or None
    if repo is not None and not REPO_RE.fullmatch(repo):
        raise SystemExit(f"_config.yml: repository.url must be https://github.com/ORG/REPO, got {repo!r}")
    if base is not None and not re.fullmatch(r"https://[^\s\"']+/", base):
        raise SystemExit(f"_config.yml: html.baseurl must be the site's https URL ending with '/', got {base!r}")
    source = "config"
    if repo is None:
        remote = origin_url(root)
        repo = github_repository(remote) if remote else None
        source = "origin" if repo else "none"
    if base is None and repo is not None:
        base = pages_url(repo)
    project = root / "pyproject.toml"
    if not project.exists():   # a book tree without the package (a test book): this package's
        project = ROOT / "pyproject.toml"
    version = tomllib.loads(project.read_text())["project"]["version"]
    return Site(repo, branch, base, version, source)


def install_source(s: Site, extra: str = "", module: str = "") -> str:
    """The body of an install cell: linflow's wheel from the site (plus EXTRA requirements,
    also installed when MODULE is missing)."""
    what = "linflow" + (f" and {module}" if module else "")
    skip = "" if module else " (the book build skips this cell)"
    lines = [f"# On Colab or in a fresh environment: install {what}{skip}.", "import importlib.util"]
    if module:
        lines += [f"needed = (\"linflow\", \"{module}\")",
                  "if any(importlib.util.find_spec(m) is None for m in needed):"]
    else:
        lines += ["if importlib.util.find_spec(\"linflow\") is None:"]
    if s.baseurl is None:
        return "\n".join(lines + _no_site_lines(extra))
    wheel = "{site}" + f"{WHEELS}/{s.wheel_name}"     # IPython expands {site} in the magic
    lines += [f"    site = \"{s.baseurl}\""]
    if extra:
        lines += [f"    extra = {extra!r}", f"    %pip install -q {{extra}} {wheel}"]
    else:
        lines += [f"    %pip install -q {wheel}"]
    return "\n".join(lines)


def clone_command(s: Site, branch: str = "") -> str:
    """The clone command a page shows, for the repository of the setting (a placeholder
    where the setting names none)."""
    b = f"-b {branch} " if branch else ""
    if s.repository is None:
        return f"git clone {b}{NO_REPO_CLONE} && cd linflow"
    return f"git clone {b}{s.repository} && cd {s.repository.rsplit('/', 1)[1]}"


#: Pages that need more than linflow: (requirement, module whose absence triggers the install).
PAGE_EXTRAS = {"guide_sweeps": ('"dask[distributed]>=2024.1" "bokeh>=3.1"', "distributed")}


def page_extra(page: str | Path | None) -> tuple[str, str]:
    """The extra requirement and module of PAGE (a file name or stem), or ("", "")."""
    return PAGE_EXTRAS.get(Path(page).stem, ("", "")) if page else ("", "")


def _derived(text: str, s: Site, page: str | Path | None = None) -> str:
    """TEXT (of PAGE) with its install cells and clone commands derived from the setting."""
    text = CELL_RE.sub(lambda m: install_cell(s, page), text)
    return CLONE_RE.sub(lambda m: clone_command(s, (m.group(1) or "")[3:].strip()), text)


def install_cell(s: Site, page: str | Path | None = None) -> str:
    """The install cell of a MyST page."""
    return ("```{code-cell} ipython3\n:tags: [skip-execution, hide-cell]\n\n"
            + install_source(s, *page_extra(page)) + "\n```")


def book_pages(root: Path = ROOT) -> list[Path]:
    return sorted((root / "book").glob("*.md"))


def stale_cells(root: Path = ROOT) -> list[str]:
    """Pages whose install cells or clone commands differ from what the setting gives."""
    s = site(root)
    return [str(p.relative_to(root)) for p in book_pages(root)
            if _derived(p.read_text(encoding="utf-8"), s, p) != p.read_text(encoding="utf-8")]


def sync(root: Path = ROOT) -> list[str]:
    """Rewrite every install cell and clone command of the book to what the setting gives;
    returns the changed pages."""
    s = site(root)
    changed = []
    for p in book_pages(root):
        text = p.read_text(encoding="utf-8")
        new = _derived(text, s, p)
        if new != text:
            p.write_text(new, encoding="utf-8")
            changed.append(str(p.relative_to(root)))
    return changed


def build_wheel(dest: Path, root: Path = ROOT) -> Path:
    """Build linflow's wheel into DEST (offline: no build isolation, no dependencies)."""
    dest.mkdir(parents=True, exist_ok=True)
    s = site(root)
    for old in dest.glob("linflow-*.whl"):
        old.unlink()
    # setuptools builds in the source tree: build from a private copy of the package, so
    # that concurrent builds (tests, the student edition) and the tree itself stay clean
    with tempfile.TemporaryDirectory(prefix="linflow-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, src / name)
        shutil.copytree(root / "linflow", src / "linflow", ignore=shutil.ignore_patterns("__pycache__"))
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(dest), str(src)], capture_output=True, text=True)
    wheel = dest / s.wheel_name
    if r.returncode or not wheel.exists():
        raise SystemExit(f"publish: building {s.wheel_name} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return wheel


#: the launch providers that need a repository (the theme's launch_buttons keys)
LAUNCHERS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "thebe")


def apply_setting(app, config) -> None:
    """``config-inited``: the theme's repository, buttons and launch buttons, and
    ``html_baseurl``, from :func:`site` (Jupyter Book would otherwise fill in its own default
    repository). Without a repository: no launch or repository button, and one warning line."""
    s = site(Path(app.srcdir))
    theme = config.html_theme_options
    if s.repository is None:
        theme.pop("repository_url", None)
        theme["use_repository_button"] = False
        theme["use_edit_page_button"] = False
        theme["use_issues_button"] = False
        launch = dict(theme.get("launch_buttons") or {})
        theme["launch_buttons"] = {k: v for k, v in launch.items() if k not in LAUNCHERS}
        # printed, not a Sphinx warning: the build runs with -W, and a site without a
        # repository is a valid (local) build
        print("WARNING: linflow: no repository.url in _config.yml and no GitHub origin "
              "(git remote get-url origin): the site is built without launch and repository "
              "buttons (see tools/publish.py)", file=sys.stderr, flush=True)
    else:
        theme["repository_url"] = s.repository
        theme["repository_branch"] = s.branch
        theme["use_repository_button"] = True
    config.html_baseurl = s.baseurl or ""


def setup(app):
    """Sphinx extension (``_config.yml``: ``sphinx.local_extensions``): apply the setting."""
    app.connect("config-inited", apply_setting, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check that the install cells are current")
    a = ap.parse_args(argv)
    if a.check:
        stale = stale_cells()
        if stale:
            sys.exit("publish: install cells that do not match _config.yml (run tools/publish.py): "
                     + ", ".join(stale))
        print("publish: every install cell matches _config.yml")
        return
    changed = sync()
    print(f"publish: {len(changed)} page(s) with updated install cells" + (f": {', '.join(changed)}" if changed else ""))


if __name__ == "__main__":
    main()
