"""The student edition (tools/student.py): no solution text in any output file.

* the stripper on synthetic pages (gated and plain solutions, backtick and colon fences,
  nesting, literal code blocks that only show the syntax, .ipynb pages, malformed input);
* every page of the real book: it strips cleanly, no solution directive is left, and no
  distinctive phrase of any of its solutions survives in the stripped source;
* a real build (jupyter-book -n -W) of the student edition of a small book: the real
  intro, instructor and references pages plus synthetic pages whose solutions hold known
  sentinel text (in prose, in code, and in printed outputs of executed code); the sentinel
  and every extracted solution phrase are searched in every output file (HTML, _sources,
  downloadable notebooks, the student branch tree).

The full book's student edition is built by ``python3 dev.py student`` (which runs the same
leak check on every page and fails on a leak); set LINFLOW_STUDENT_FULL=1 to build it here.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import student  # noqa: E402
from support import shared_once  # noqa: E402

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

# Sentinels: each must vanish from every output. They are in solution prose, solution code,
# and the printed output of solution code (executed by the build).
SENTINELS = {
    "prose": "zebra quantity equals forty two marmalade units",
    "code": "alpha bravo charlie delta echo",
    "output": "SENTINEL OUTPUT foxtrot golf hotel",
    "plain": "pelicans guard the lighthouse at midnight",
    "plain_code": "kilo lima mike november oscar",
    "colon": "volcanoes open umbrellas in april",
    "nested": "quartz penguins juggle seven oranges",
    "nb_prose": "notebook solution about tangerine submarines",
    "nb_output": "NOTEBOOK OUTPUT papa quebec romeo",
}
KEPT = {
    "exercise": "Compute the marmalade quantity of the page",
    "syntax_demo": "this literal block only shows the syntax",
    "after": "Text after every solution stays",
}

GATED_PAGE = HEADER + f"""
# Synthetic gated page

```{{code-cell}} ipython3
import numpy as np
```

```{{exercise-start}}
:label: syn-ex1
```
{KEPT["exercise"]}.
```{{exercise-end}}
```

```{{solution-start}} syn-ex1
:label: syn-sol1
:class: dropdown
```
The {SENTINELS["prose"]} exactly.

```{{code-cell}} ipython3
secret_value = 42  # {SENTINELS["code"]}
print("{SENTINELS["output"]}")
```
````{{solution-end}}
````

See {{ref}}`the solution <syn-sol1>` and {{ref}}`syn-sol1`.

````markdown
{KEPT["syntax_demo"]}:
```{{solution-start}} ex
```
```{{solution-end}}
```
````

{KEPT["after"]}.
"""

PLAIN_PAGE = HEADER + f"""
# Synthetic plain page

```{{exercise}}
:label: syn-ex2
Find the lighthouse.
```

````{{solution}} syn-ex2
:label: syn-sol2
The {SENTINELS["plain"]}.
```python
x = "{SENTINELS["plain_code"]}"
```
````

:::{{solution}} syn-ex2
:class: dropdown
Colon: {SENTINELS["colon"]}.
:::

::::{{admonition}} A wrapper
:::{{solution}} syn-ex2
The {SENTINELS["nested"]}.
:::
Wrapper text stays.
::::

{KEPT["after"]}.
"""


def notebook_page() -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Synthetic notebook page\n\n```{exercise-start}\n:label: syn-ex3\n```\nDo it.\n```{exercise-end}\n```"),
        nbformat.v4.new_markdown_cell(f"```{{solution-start}} syn-ex3\n```\nA {SENTINELS['nb_prose']}."),
        nbformat.v4.new_code_cell(f"print('{SENTINELS['nb_output']}')",
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text=SENTINELS["nb_output"] + "\n")]),
        nbformat.v4.new_markdown_cell("```{solution-end}\n```"),
        nbformat.v4.new_markdown_cell(KEPT["after"] + "."),
    ]
    return nbformat.writes(nb)


# --------------------------------------------------------------------------- the stripper
def test_strip_gated_keeps_exercise_and_unlinks_refs():
    res = student.strip_solutions(GATED_PAGE)
    assert len(res.solutions) == 1 and res.labels == ["syn-sol1"]
    for s in (SENTINELS["prose"], SENTINELS["code"], SENTINELS["output"], "secret_value"):
        assert s not in res.text
    for s in KEPT.values():
        assert s in res.text
    assert "syn-sol1" not in res.text and "See the solution and the solution." in res.text
    assert "```{exercise-start}" in res.text and "```{exercise-end}" in res.text
    # the literal demo block is untouched, and it is not taken for a real solution
    assert "```{solution-start} ex" in res.text
    assert student.find_solution_directives(res.text) == []


def test_strip_plain_colon_and_nested():
    res = student.strip_solutions(PLAIN_PAGE)
    assert len(res.solutions) == 3
    for key in ("plain", "plain_code", "colon", "nested"):
        assert SENTINELS[key] not in res.text
    assert "Find the lighthouse." in res.text and "Wrapper text stays." in res.text
    assert res.text.count("::::") == 2            # the wrapper keeps both of its fences
    assert KEPT["after"] in res.text


def test_strip_notebook_page(tmp_path):
    p = tmp_path / "nbpage.ipynb"
    p.write_text(notebook_page())
    text = student.read_page(p)
    res = student.strip_solutions(text)
    assert len(res.solutions) == 1
    assert SENTINELS["nb_prose"] not in res.text and SENTINELS["nb_output"] not in res.text
    assert KEPT["after"] in res.text and "Do it." in res.text


@pytest.mark.parametrize("bad", [
    "```{solution-start} x\n```\nno end here\n",
    "```{solution-end}\n```\n",
    "````{solution} x\nunclosed plain solution\n",
    "```{solution-start} x\n```\n```{solution-start} y\n```\n```{solution-end}\n```\n",
])
def test_strip_rejects_malformed(bad):
    with pytest.raises(student.StripError):
        student.strip_solutions(bad)


def test_probes_skip_shared_phrases():
    page = GATED_PAGE + "\nsecret_value = 42 is mentioned outside too\n"
    block = student.strip_solutions(GATED_PAGE).solutions[0]
    probes = student.solution_probes(block, page)
    assert SENTINELS["code"] in probes and SENTINELS["output"] in probes
    assert not any("import numpy" in p for p in probes)


# --------------------------------------------------------------------------- the real book
def _real_pages():
    pages = student.toc_pages(ROOT)
    files = [student.page_file(ROOT, p) for p in pages]
    assert all(f is not None for f in files), "every page of _toc.yml has a file"
    extra = sorted(set((ROOT / "book").rglob("*.md")) - set(files))
    return [f for f in files + extra if "autoapi" not in f.parts]


def _naive_count(text: str) -> int:
    """Solution openings by a plain regex (independent of the stripper's parser)."""
    return len(re.findall(r"^\s*(`{3,}|:{3,})\{(solution|solution-start)\}", text, flags=re.M))


def test_every_real_page_strips_without_leaving_solution_text():
    pages = _real_pages()
    assert len(pages) >= 5
    total = 0
    for f in pages:
        text = student.read_page(f)
        res = student.strip_solutions(text, str(f))
        assert student.find_solution_directives(res.text) == [], f
        assert _naive_count(res.text) == 0, f
        total += len(res.solutions)
        for block in res.solutions:
            for probe in student.solution_probes(block, text):
                assert probe not in student.normalize(res.text), (f, probe)
        # the stripped page still parses as a notebook (what jupytext hands to Binder/Colab)
        import jupytext
        jupytext.reads(res.text, fmt="md:myst")
    # every solution counted by a naive scan of the sources was removed
    naive = sum(_naive_count(student.read_page(f)) for f in pages)
    assert total == naive


# --------------------------------------------------------------------------- a real build
def _mini_book(dest: Path) -> Path:
    """A small book: the real instructor and references pages + the synthetic pages (the
    real intro links to every chapter, so a synthetic root page stands in for it)."""
    (dest / "book").mkdir(parents=True)
    for name in ("instructor.md", "references.md", "references.bib"):
        shutil.copy2(ROOT / "book" / name, dest / "book" / name)
    (dest / "book" / "intro.md").write_text("# A small course\n\nThe root page of the test book.\n")
    if (ROOT / "book" / "_static").is_dir():
        shutil.copytree(ROOT / "book" / "_static", dest / "book" / "_static")
    (dest / "book" / "syn_gated.md").write_text(GATED_PAGE)
    (dest / "book" / "syn_plain.md").write_text(PLAIN_PAGE)
    (dest / "book" / "syn_nb.ipynb").write_text(notebook_page())
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    # a repository and site of its own (the mini book is no clone): launch buttons to check
    cfg["repository"]["url"] = "https://github.com/someone/mycourse"
    cfg["html"]["baseurl"] = "https://someone.github.io/mycourse/"
    sph = cfg.setdefault("sphinx", {})
    sph["local_extensions"] = {"publish": str(ROOT / "tools")}
    # the API reference (sphinx-autoapi over linflow/) is not part of this small book
    sph["extra_extensions"] = [e for e in sph.get("extra_extensions", []) if "autoapi" not in e]
    sph["config"] = {k: v for k, v in sph.get("config", {}).items() if not k.startswith("autoapi")}
    (dest / "_config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    toc = {"format": "jb-book", "root": "book/intro",
           "parts": [{"caption": "Pages", "chapters": [{"file": f"book/{p}"} for p in ("syn_gated", "syn_plain", "syn_nb")]},
                     {"caption": "For instructors", "chapters": [{"file": "book/instructor"}]},
                     {"caption": "Reference", "chapters": [{"file": "book/references"}]}]}
    (dest / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    return dest


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    def build(folder):
        src, out = _mini_book(folder / "minibook"), folder / "student-out"
        jb = ROOT / ".venv" / "bin" / "jupyter-book"
        summary = student.make_student_edition(src, out, assignments=False, jb=jb if jb.exists() else None)
        return [str(src), str(out), summary]

    src, out, summary = shared_once(tmp_path_factory, "student-edition", build)
    return Path(src), Path(out), summary


def _all_text_files(*roots):
    for root in roots:
        for p in Path(root).rglob("*"):
            if p.is_file() and p.suffix.lower() in student.TEXT_SUFFIXES:
                yield p


def test_build_has_every_output(edition):
    src, out, summary = edition
    html = out / "html"
    for page in ("syn_gated", "syn_plain", "syn_nb"):
        assert (html / "book" / f"{page}.html").exists()
        assert (out / "repo" / "notebooks" / f"{page}.ipynb").exists()
        assert (html / "_notebooks" / f"{page}.ipynb").exists()
        # the download button offers the stripped notebook, not the executed copy in _sources
        page_html = (html / "book" / f"{page}.html").read_text()
        assert f'href="../_notebooks/{page}.ipynb"' in page_html, page
        assert not re.search(r'href="[^"]*_sources/[^"]*\.ipynb"', page_html), page
    # the instructor page is not part of the student edition: not built, not on the branch
    assert not (html / "book" / "instructor.html").exists()
    assert not (out / "repo" / "book" / "instructor.md").exists()
    assert not (out / "repo" / "notebooks" / "instructor.ipynb").exists()
    assert "instructor" not in (out / "repo" / "_toc.yml").read_text()
    assert "instructor" not in (html / "book" / "syn_gated.html").read_text().lower()
    # the branch's README describes that branch: title first, and only folders it has
    readme = (out / "repo" / "README.md").read_text()
    assert readme.startswith("# ") and "student edition" in readme.lower()
    folders = re.findall(r"^\| `([\w.-]+)/` \|", readme, flags=re.M)
    assert {"book", "notebooks"} <= set(folders), folders
    for folder in folders:
        assert (out / "repo" / folder).is_dir(), folder
    for absent in ("tools/", "tests/", "benchmarks/"):
        assert absent not in readme
    # the stripped notebooks start with the install cell, and its wheel is in the site
    import publish
    nb = json.loads((html / "_notebooks" / "syn_gated.ipynb").read_text())
    first = "".join(nb["cells"][0]["source"])
    assert "%pip install" in first and publish.site().wheel_name in first
    assert (html / "_static" / "wheels" / publish.site().wheel_name).exists()
    assert (html / "_sources" / "book" / "syn_gated.md").exists()
    assert summary["solutions_removed"] == 5 and summary["leaks"] == []
    # the exercise is on the page, and the executed (non-solution) code ran
    page = (html / "book" / "syn_gated.html").read_text()
    assert "marmalade quantity of the page" in page and "student edition" in page.lower()
    # Colab opens the generated notebook on the student branch, not the .md
    colab = re.findall(r"https://colab\.research\.google\.com/[^\"]+", page)
    assert colab and all(u.endswith("/blob/student/notebooks/syn_gated.ipynb") for u in colab)
    binder = re.findall(r"https://mybinder\.org/[^\"]+", page)
    assert binder and all("/student?" in u for u in binder)


def test_no_sentinel_in_any_output_file(edition):
    src, out, _ = edition
    n_files = 0
    for p in _all_text_files(out / "html", out / "repo"):
        n_files += 1
        raw = p.read_text(errors="replace")
        text = student.output_text(p)
        for key, s in SENTINELS.items():
            assert s not in raw and s not in text, f"{key} leaked into {p}"
    assert n_files > 20


def test_no_solution_phrase_in_any_output_file(edition):
    src, out, _ = edition
    probes, n = student.collect_probes(src)
    assert n == 5
    flat = {p for ps in probes.values() for p in ps}
    for s in SENTINELS.values():            # the sentinels are among the extracted phrases
        assert any(s in p or p in s for p in flat), s
    assert student.scan_leaks(probes, out / "html", out / "repo") == []


def test_leak_scan_finds_leaks(edition, tmp_path):
    """The scanner is not blind: the unstripped sources and a build with a solution left in are caught."""
    src, out, _ = edition
    probes, _ = student.collect_probes(src)
    shutil.copytree(src / "book", tmp_path / "orig")
    leaks = student.scan_leaks(probes, tmp_path / "orig")
    found = {p for _, _, p in leaks}
    assert found == {p for ps in probes.values() for p in ps}
    # one HTML page of the edition with a solution pasted back in
    bad = tmp_path / "bad" / "page.html"
    bad.parent.mkdir()
    bad.write_text("<p>The <em>zebra</em> quantity equals forty two marmalade units</p>"
                   "<span class='n'>SENTINEL</span> <span>OUTPUT foxtrot golf hotel</span>")
    hits = {p for _, _, p in student.scan_leaks(probes, bad.parent)}
    assert SENTINELS["output"] in hits


def test_stripped_notebooks_are_valid(edition):
    _, out, _ = edition
    for nb in (out / "repo" / "notebooks").glob("*.ipynb"):
        nbformat.validate(nbformat.read(nb, as_version=4))
        assert not any(c.get("outputs") for c in json.loads(nb.read_text())["cells"]
                       if c["cell_type"] == "code")


@pytest.mark.skipif(os.environ.get("LINFLOW_STUDENT_FULL") != "1",
                    reason="the full student edition is built by `python3 dev.py student`; "
                           "set LINFLOW_STUDENT_FULL=1 to build it in the tests")
def test_full_student_edition(tmp_path):
    summary = student.make_student_edition(ROOT, tmp_path / "student", assignments=True)
    assert summary["leaks"] == [] and summary["solutions_removed"] == summary["solutions_in_sources"]


def test_assignment_masters_are_probed():
    """The student edition also checks its copies of the assignments against the masters."""
    probes, _ = student.collect_probes(ROOT)
    masters = [m for m in sorted((ROOT / "assignments").glob("*.md")) if not m.name.upper().startswith("README")]
    assert len(masters) >= 4
    for m in masters:
        ps = probes[str(m.relative_to(ROOT))]
        assert sum(p.startswith("test_") for p in ps) == 4, m   # the hidden tests
        assert len(ps) >= 10, m
