"""The committed Colab notebooks (notebooks/) match the chapters they are generated from.

Colab opens ``notebooks/<name>.ipynb`` from GitHub, so a notebook page whose notebook is not
committed, or was committed from an older version of its chapter, gives readers a broken or
stale "Open in Colab" link.  ``tools/postbuild.py`` regenerates the files at every book build;
this test checks what git holds (the index, which is HEAD in a fresh clone).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import postbuild  # noqa: E402

PAGES = [d for d in postbuild.toc_files() if (s := postbuild.source_of(d)) is not None and postbuild.is_notebook(s)]


def _git_blob(path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the committed notebooks cannot be read")
    out = subprocess.run(["git", "show", f":{path}"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def test_every_notebook_page_has_one():
    assert len(PAGES) >= 12 and "book/intro" in PAGES


@pytest.mark.parametrize("docname", PAGES)
def test_committed_notebook_matches_its_chapter(docname):
    name = Path(docname).name
    committed = _git_blob(f"notebooks/{name}.ipynb")
    assert committed is not None, (
        f"notebooks/{name}.ipynb is not committed: run `python3 dev.py book` and `git add notebooks/`"
    )
    assert committed == postbuild.make_notebook(postbuild.source_of(docname)), (
        f"notebooks/{name}.ipynb is older than {docname}.md: run `python3 dev.py book` and commit notebooks/"
    )
