"""Where the course is published (tools/publish.py): one setting, everything derived from it.

* ``_config.yml`` names the repository (``repository.url``, ``branch``) and the site
  (``html.baseurl``); a malformed setting is an error naming the key;
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


def test_setting_names_repository_and_site():
    s = publish.site()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", s.repository)
    assert s.baseurl.startswith("https://") and s.baseurl.endswith("/")
    assert s.wheel_url == f"{s.baseurl}_static/wheels/linflow-{s.version}-py3-none-any.whl"


@pytest.mark.parametrize("key, old, new", [
    ("repository.url", "url: https://github.com/", "url: http://example.org/"),
    ("html.baseurl", "baseurl: https://", "baseurl: ftp://"),
])
def test_malformed_setting_is_named(tmp_path, key, old, new):
    root = _copy_setting(tmp_path)
    cfg = root / "_config.yml"
    text = cfg.read_text()
    assert old in text
    cfg.write_text(text.replace(old, new, 1))
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
    assert f'site = "{s.baseurl}"' in publish.install_source(s)


def test_changing_the_setting_rewrites_every_cell(tmp_path):
    root = _copy_setting(tmp_path)
    cfg = root / "_config.yml"
    old = publish.site(root)
    cfg.write_text(cfg.read_text().replace(old.repository, "https://github.com/someone/mycourse")
                   .replace(old.baseurl, "https://someone.github.io/mycourse/"))
    assert publish.stale_cells(root), "the old cells must be stale under the new setting"
    changed = publish.sync(root)
    assert changed and publish.stale_cells(root) == []
    text = "\n".join(p.read_text() for p in publish.book_pages(root))
    assert old.baseurl not in text and old.repository not in text
    assert text.count('site = "https://someone.github.io/mycourse/"') >= 10
    assert "git clone https://github.com/someone/mycourse && cd mycourse" in text


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
        assert f'site = \\"{s.baseurl}\\"' in nb.read_text() and s.wheel_name in nb.read_text(), nb.name
    sys.path.insert(0, str(ROOT / "tools"))
    import postbuild

    assert postbuild.check_install_urls(SITE) == []


def test_built_site_links_follow_the_setting():
    _built()
    s = publish.site()
    org_repo = s.repository.removeprefix("https://github.com/")
    html = (SITE / "book" / "01_linear_models.html").read_text()
    binder = re.findall(r'https://mybinder\.org/v2/gh/[^"]+', html)
    colab = re.findall(r'https://colab\.research\.google\.com/github/[^"]+', html)
    repo = re.findall(r'href="(https://github\.com/[^"]+)"', html)
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
