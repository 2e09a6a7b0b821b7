"""Where the course is published (tools/publish.py): one setting, everything derived from it.

* ``_config.yml`` may name the repository (``repository.url``, ``branch``) and the site
  (``html.baseurl``); a malformed setting is an error naming the key; what it leaves out is
  derived from the clone's GitHub ``origin`` (https and ssh forms), and with neither the
  site has no launch or repository buttons and the build says so;
* every install cell of the book installs linflow's own wheel from that site (linflow is not
  on the package index), and changing the setting rewrites every cell and clone command;
* the wheel builds offline and installs into an empty target, where it imports;
* the built site serves that wheel, and its Binder, Colab and repository links point at the
  repository of the setting;
* the Binder environment can run the assignments (otter-grader), and the README starts with
  its title and the two commands.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import publish  # noqa: E402

SITE = ROOT / "_build" / "html"


def _copy_setting(dest: Path) -> Path:
    shutil.copy2(ROOT / "_config.yml", dest / "_config.yml")
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(ROOT / "book", dest / "book", ignore=shutil.ignore_patterns("autoapi", "_static"))
    return dest


def _set(root: Path, url: str | None = None, baseurl: str | None = None) -> None:
    """Write repository.url / html.baseurl into ROOT's _config.yml (they are commented out)."""
    cfg = root / "_config.yml"
    text = cfg.read_text()
    if url is not None:
        text = re.sub(r"(?m)^  # url: .*$", f"  url: {url}", text, count=1)
    if baseurl is not None:
        text = re.sub(r"(?m)^  # baseurl: .*$", f"  baseurl: {baseurl}", text, count=1)
    cfg.write_text(text)


def _git(root: Path, origin: str | None) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    if origin:
        subprocess.run(["git", "-C", str(root), "remote", "add", "origin", origin], check=True)


def test_config_leaves_repository_and_site_to_the_clone():
    """No placeholder repository: the shipped _config.yml names none (the clone's origin does)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert not (cfg.get("repository") or {}).get("url")
    assert not (cfg.get("html") or {}).get("baseurl")
    assert cfg["sphinx"]["local_extensions"] == {"publish": "tools/"}


@pytest.mark.parametrize("remote", [
    "https://github.com/someone/mycourse", "https://github.com/someone/mycourse.git",
    "https://github.com/someone/mycourse/", "git@github.com:someone/mycourse.git",
    "git@github.com:someone/mycourse", "ssh://git@github.com/someone/mycourse.git",
])
def test_remote_forms(remote):
    assert publish.github_repository(remote) == "https://github.com/someone/mycourse"
    assert publish.pages_url("https://github.com/someone/mycourse") == "https://someone.github.io/mycourse/"


@pytest.mark.parametrize("remote", ["https://gitlab.com/someone/mycourse", "/srv/git/mycourse",
                                    "https://github.com/someone", "file:///tmp/x.git", ""])
def test_other_remotes_give_no_repository(remote):
    assert publish.github_repository(remote) is None


def test_user_site_repository_pages_address():
    assert publish.pages_url("https://github.com/Someone/someone.github.io") == "https://someone.github.io/"


@pytest.mark.parametrize("origin", ["git@github.com:someone/mycourse.git", "https://github.com/someone/mycourse.git"])
def test_setting_derived_from_origin(tmp_path, origin):
    root = _copy_setting(tmp_path)
    _git(root, origin)
    s = publish.site(root)
    assert (s.repository, s.baseurl, s.source) == ("https://github.com/someone/mycourse",
                                                   "https://someone.github.io/mycourse/", "origin")
    assert s.wheel_url == f"https://someone.github.io/mycourse/_static/wheels/linflow-{s.version}-py3-none-any.whl"


def test_config_wins_over_origin(tmp_path):
    root = _copy_setting(tmp_path)
    _git(root, "git@github.com:someone/mycourse.git")
    _set(root, url="https://github.com/org/course", baseurl="https://course.example.org/")
    s = publish.site(root)
    assert (s.repository, s.baseurl, s.source) == ("https://github.com/org/course",
                                                   "https://course.example.org/", "config")


def test_without_repository_nothing_links_to_one(tmp_path):
    root = _copy_setting(tmp_path)
    _git(root, "/srv/git/mycourse.git")   # a local remote: no GitHub repository
    s = publish.site(root)
    assert (s.repository, s.baseurl, s.source, s.wheel_url) == (None, None, "none", None)
    publish.sync(root)
    assert publish.stale_cells(root) == []
    text = "\n".join(p.read_text() for p in publish.book_pages(root))
    assert "linflow/linflow" not in text and "linflow.github.io" not in text   # the old placeholder
    cells = publish.CELL_RE.findall(text)
    assert len(cells) >= 10 and not any("github" in c or "%pip" in c for c in cells)
    src = publish.install_source(s)
    assert "pip install -e ." in src and "%pip" not in src
    compile(src, "<install cell>", "exec")    # plain Python: it raises with the message
    assert publish.CELL_RE.search(publish.install_cell(s))   # and it is still found as the cell
    assert publish.clone_command(s) == "git clone <URL of your copy> linflow && cd linflow"


@pytest.mark.parametrize("key, value", [
    ("repository.url", dict(url="http://example.org/x/y")),
    ("html.baseurl", dict(baseurl="ftp://example.org/")),
])
def test_malformed_setting_is_named(tmp_path, key, value):
    root = _copy_setting(tmp_path)
    _set(root, **value)
    with pytest.raises(SystemExit, match=re.escape(key)):
        publish.site(root)


def test_every_install_cell_follows_the_setting():
    assert publish.stale_cells() == [], "run python3 tools/publish.py (dev.py book does)"
    s = publish.site()
    n = 0
    for page in publish.book_pages():
        text = page.read_text(encoding="utf-8")
        n += len(publish.CELL_RE.findall(text))
        # nothing installs linflow from the package index or a git URL
        assert not re.search(r"pip install (-q )?['\"]?linflow\b(?!\[)", text), page
        assert "git+https://" not in text, page
    assert n >= 10
    if s.baseurl:
        assert f'site = "{s.baseurl}"' in publish.install_source(s)


def test_changing_the_setting_rewrites_every_cell(tmp_path):
    root = _copy_setting(tmp_path)
    _set(root, url="https://github.com/org/course", baseurl="https://org.github.io/course/")
    publish.sync(root)
    old = publish.site(root)
    cfg = root / "_config.yml"
    cfg.write_text(cfg.read_text().replace(old.repository, "https://github.com/someone/mycourse")
                   .replace(old.baseurl, "https://someone.github.io/mycourse/"))
    assert publish.stale_cells(root), "the old cells must be stale under the new setting"
    changed = publish.sync(root)
    assert changed and publish.stale_cells(root) == []
    text = "\n".join(p.read_text() for p in publish.book_pages(root))
    assert old.baseurl not in text and old.repository not in text
    assert text.count('site = "https://someone.github.io/mycourse/"') >= 10
    assert "git clone https://github.com/someone/mycourse && cd mycourse" in text


TINY_PAGE = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
# A page

```{code-cell} ipython3
1 + 1
```
"""


def _tiny_build(tmp_path: Path, origin: str | None):
    """A one-page book with the course's _config.yml (launch buttons, the publish extension)
    in a clone whose origin is ORIGIN; returns (page HTML, build output)."""
    import yaml

    root = tmp_path / "book"
    (root / "book").mkdir(parents=True)
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["sphinx"] = {"local_extensions": {"publish": str(ROOT / "tools")}}
    cfg["execute"] = {"execute_notebooks": "off"}
    cfg.pop("bibtex_bibfiles", None)
    for k in ("exclude_patterns", "only_build_toc_files"):
        cfg.pop(k, None)
    (root / "_config.yml").write_text(yaml.safe_dump(cfg))
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (root / "book" / "page.md").write_text(TINY_PAGE)
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    _git(root, origin)
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run([str(jb), "build", str(root), "--path-output", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return (tmp_path / "out" / "_build" / "html" / "book" / "page.html").read_text(), r.stdout + r.stderr


@pytest.mark.slow
def test_buttons_follow_the_derived_repository(tmp_path):
    html, out = _tiny_build(tmp_path, "git@github.com:someone/mycourse.git")
    assert "https://mybinder.org/v2/gh/someone/mycourse/main?" in html
    assert "https://colab.research.google.com/github/someone/mycourse/blob/main/" in html
    assert 'href="https://github.com/someone/mycourse"' in html
    assert "executablebooks" not in html and "linflow/linflow" not in html
    assert "no GitHub origin" not in out


@pytest.mark.slow
def test_no_repository_no_buttons_one_warning(tmp_path):
    html, out = _tiny_build(tmp_path, None)
    assert "mybinder.org" not in html and "colab.research.google.com" not in html
    assert "https://github.com/" not in html     # not even Jupyter Book's default repository
    assert out.count("no GitHub origin") == 1


def test_wheel_builds_offline_and_installs(tmp_path):
    wheel = publish.build_wheel(tmp_path / "wheels")
    assert wheel.name == publish.site().wheel_name
    target = tmp_path / "target"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                        "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    code = "import linflow, sys; print(linflow.__file__); print(linflow.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "LINFLOW_PROGRESS": "0"})
    assert out.returncode == 0, out.stderr[-2000:]
    where, version = out.stdout.split()
    assert Path(where).resolve().is_relative_to(target.resolve())
    assert version == publish.site().version


def _built():
    if not (SITE / "index.html").exists():
        pytest.skip("the website is not built (python3 dev.py book)")


def test_built_site_serves_the_wheel_its_install_cells_name():
    _built()
    s = publish.site()
    assert (SITE / "_static" / "wheels" / s.wheel_name).is_file()
    nbs = sorted((SITE / "_notebooks").glob("*.ipynb"))
    assert len(nbs) >= 12
    for nb in nbs:
        if s.baseurl:
            assert f'site = \\"{s.baseurl}\\"' in nb.read_text() and s.wheel_name in nb.read_text(), nb.name
        else:
            assert "pip install -e ." in nb.read_text() and "%pip" not in nb.read_text(), nb.name
    sys.path.insert(0, str(ROOT / "tools"))
    import postbuild

    assert postbuild.check_install_urls(SITE) == []


def test_built_site_links_follow_the_setting():
    _built()
    s = publish.site()
    html = (SITE / "book" / "01_linear_models.html").read_text()
    binder = re.findall(r'https://mybinder\.org/v2/gh/[^"]+', html)
    colab = re.findall(r'https://colab\.research\.google\.com/github/[^"]+', html)
    repo = re.findall(r'href="(https://github\.com/[^"]+)"', html)
    if s.repository is None:     # no repository known: no link to one
        assert binder == colab == repo == []
        return
    org_repo = s.repository.removeprefix("https://github.com/")
    assert binder and all(f"/gh/{org_repo}/{s.branch}?" in u for u in binder)
    assert colab and all(f"/github/{org_repo}/blob/{s.branch}/notebooks/" in u for u in colab)
    assert repo and all(u.startswith(s.repository) for u in repo)


def test_binder_can_run_the_assignments():
    reqs = (ROOT / "binder" / "requirements.txt").read_text()
    assert re.search(r"^otter-grader\b", reqs, flags=re.M), "every assignment starts with `import otter`"


def test_readme_starts_with_title_and_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1] == ""
    assert lines[2:6] == ["```bash", lines[3], lines[4], "```"]
    assert lines[3].startswith("python3 dev.py book") and lines[4].startswith("python3 dev.py test")
