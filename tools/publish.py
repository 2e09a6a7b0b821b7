#!/usr/bin/env python3
"""Where the course is published, and everything that derives from it.

    python3 tools/publish.py [--check]      # rewrite (or only check) the install cells

One setting in ``_config.yml`` says where the course lives:

    repository:
      url: https://github.com/ORG/REPO       # the repository (Binder, Colab, repository links)
      branch: main
    html:
      baseurl: https://ORG.github.io/REPO/   # the site (the install cells fetch the wheel there)

The theme builds the Binder, Colab and repository buttons from ``repository``;
``tools/postbuild.py`` builds linflow's own wheel into the site
(``_static/wheels/linflow-VERSION-py3-none-any.whl``), and every install cell (book pages,
generated notebooks, student assignments) installs that wheel from ``html.baseurl``. linflow
is not on the package index: ``pip install linflow`` would install nothing, or someone
else's package. ``dev.py book`` runs this script before building, so changing the setting
and rebuilding updates every install cell; ``--check`` fails if one is stale.
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
CLONE_RE = re.compile(r"git clone (-b [\w.-]+ )?https://github\.com/[\w.-]+/[\w.-]+? && cd [\w.-]+")


@dataclass(frozen=True)
class Site:
    """The publishing setting of ``_config.yml`` and the package version."""

    repository: str     # https://github.com/ORG/REPO
    branch: str
    baseurl: str        # https://ORG.github.io/REPO/ (ends with "/")
    version: str

    @property
    def wheel_name(self) -> str:
        return f"linflow-{self.version}-py3-none-any.whl"

    @property
    def wheel_url(self) -> str:
        return f"{self.baseurl}{WHEELS}/{self.wheel_name}"


def site(root: Path = ROOT) -> Site:
    """Read the setting; a missing or malformed one is an error that names the key."""
    import yaml

    cfg = yaml.safe_load((root / "_config.yml").read_text()) or {}
    repo = (cfg.get("repository") or {}).get("url") or ""
    branch = (cfg.get("repository") or {}).get("branch") or "main"
    base = (cfg.get("html") or {}).get("baseurl") or ""
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo):
        raise SystemExit(f"_config.yml: repository.url must be https://github.com/ORG/REPO, got {repo!r}")
    if not re.fullmatch(r"https://[^\s\"']+/", base):
        raise SystemExit(f"_config.yml: html.baseurl must be the site's https URL ending with '/', got {base!r}")
    project = root / "pyproject.toml"
    if not project.exists():   # a book tree without the package (a test book): this package's
        project = ROOT / "pyproject.toml"
    version = tomllib.loads(project.read_text())["project"]["version"]
    return Site(repo, branch, base, version)


def install_source(s: Site, extra: str = "", module: str = "") -> str:
    """The body of an install cell: linflow's wheel from the site (plus EXTRA requirements,
    also installed when MODULE is missing)."""
    wheel = "{site}" + f"{WHEELS}/{s.wheel_name}"     # IPython expands {site} in the magic
    what = "linflow" + (f" and {module}" if module else "")
    skip = "" if module else " (the book build skips this cell)"
    lines = [f"# On Colab or in a fresh environment: install {what}{skip}.", "import importlib.util"]
    if module:
        lines += [f"needed = (\"linflow\", \"{module}\")",
                  "if any(importlib.util.find_spec(m) is None for m in needed):"]
    else:
        lines += ["if importlib.util.find_spec(\"linflow\") is None:"]
    lines += [f"    site = \"{s.baseurl}\""]
    if extra:
        lines += [f"    extra = {extra!r}", f"    %pip install -q {{extra}} {wheel}"]
    else:
        lines += [f"    %pip install -q {wheel}"]
    return "\n".join(lines)


def clone_command(s: Site, branch: str = "") -> str:
    """The clone command a page shows, for the repository of the setting."""
    return f"git clone {'-b ' + branch + ' ' if branch else ''}{s.repository} && cd {s.repository.rsplit('/', 1)[1]}"


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
