#!/usr/bin/env python3
"""Build the student edition: the website and its notebooks with every solution removed.

    python3 dev.py student                    # the usual way (sets up .venv first)
    python3 tools/student.py [--out DIR] [--branch student] [--no-assignments] [--source ROOT]

What it does:

1. copies the book sources to a temporary tree: the repository minus .git, .venv, _build,
   caches, generated API pages, and the folders that hold solutions or are not part of the
   book (assignments/ masters, tests/, tools/, benchmarks/, the main edition's notebooks/);
   the instructor-only pages (``INSTRUCTOR_PAGES``) leave the tree and its ``_toc.yml``;
2. strips every solution from every MyST page and notebook of that tree: gated
   ``solution-start`` ... ``solution-end`` blocks (with all the code cells between them) and
   plain ``{solution}`` directives, with backtick or colon fences; references to a removed
   solution's label become plain text. A ``.ipynb`` page is converted to a MyST ``.md`` first
   (its stored outputs are dropped, they could show a solution's result);
3. builds that tree with ``jupyter-book build TREE --path-output OUT/_work -n -W --keep-going``,
   reusing the top-level ``_config.yml``/``_toc.yml`` with an override (title, announcement,
   launch buttons on the student branch), and copies the site to ``OUT/html``;
4. writes ``OUT/repo``, the tree to publish as the student branch (the launch buttons point
   there): the stripped sources, ``notebooks/XX.ipynb`` generated from them (outputs
   stripped, install cell first, as tools/postbuild.py makes them; Colab opens these), the
   package and the Binder files, the student versions of the otter assignments
   (``assignments/``, made by tools/assign.py), and a README that describes that tree; the
   site's download button offers the same stripped notebooks (``_notebooks/XX.ipynb``), not
   the executed copies in ``_sources``;
5. checks the result: no solution directive left in any stripped page, and no distinctive
   phrase of any original solution (or assignment solution / hidden test) in any output
   file (HTML, ``_sources``, downloads, notebooks, the student branch tree). A leak fails
   the command.

sphinx-exercise's ``hide_solutions`` is not used: it crashes on gated solutions and leaves
them in ``_sources``, which the download and launch buttons hand out.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "_build" / "student"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import postbuild  # noqa: E402  (the reader's notebooks and the download links)

# Pages for instructors only: not in the student edition (site, branch, notebooks).
INSTRUCTOR_PAGES = ("book/instructor",)
STUDENT_README = """# {title}

The student edition of the course: the chapters without their solutions, and the graded
assignments. Website: {site}

| folder | what |
|---|---|
{rows}

To work locally (Python 3.11 or newer):

```bash
python3 -m venv .venv && .venv/bin/pip install -e . jupyterlab jupytext "otter-grader>=6,<8"
.venv/bin/jupyter lab
```
"""
STUDENT_FOLDERS = {
    "book": "the chapters (MyST Markdown notebooks; open them in JupyterLab with Jupytext)",
    "notebooks": "the same chapters as `.ipynb` (Colab opens these; the first cell installs `linflow`)",
    "assignments": "the graded assignments (otter-grader): answer the cells marked `...`",
    "linflow": "the Python package the chapters use",
    "binder": "the Binder environment (the launch buttons of the website)",
}

# Never copied into the temporary tree.
SKIP_DIRS = {".git", ".venv", "_build", ".jupyter_cache", "__pycache__", ".pytest_cache",
             ".ipynb_checkpoints", "node_modules"}
SKIP_SUFFIXES = (".egg-info",)
# Top-level folders that hold solutions or are not part of the book: the assignment masters,
# the tests (hidden grading logic), the main edition's generated notebooks (with solutions).
SKIP_TOP = {"assignments", "tests", "tools", "benchmarks", "notebooks", ".github", "build"}

SOLUTION_DIRECTIVES = {"solution", "solution-start", "solution-end"}
# Fenced blocks whose content is literal: nothing inside them is a directive.
LITERAL_DIRECTIVES = {"code-cell", "code-block", "code", "sourcecode", "literalinclude",
                      "raw-cell", "math", "raw"}
FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>.*)$")
DIRECTIVE_RE = re.compile(r"^\{(?P<name>[A-Za-z0-9_:.\-]+)\}\s*(?P<arg>.*)$")
LABEL_RE = re.compile(r"^\s*:label:\s*(\S+)\s*$")


class StripError(ValueError):
    """A page whose solution blocks cannot be removed safely (e.g. an unclosed solution)."""


@dataclass
class Stripped:
    """Result of stripping one page."""

    text: str
    solutions: list[str] = field(default_factory=list)   # the removed blocks, verbatim
    labels: list[str] = field(default_factory=list)      # labels of the removed solutions


def _open_fence(line: str):
    """(fence, directive name or None, info) if LINE opens a fenced block, else None."""
    m = FENCE_RE.match(line)
    if not m:
        return None
    fence, info = m.group("fence"), m.group("info").strip()
    if fence[0] == ":" and not info.startswith("{"):
        return None          # a bare ::: line closes a colon fence; it never opens one
    if fence[0] == "`" and "`" in info:
        return None          # not a fence (CommonMark: no backtick in a backtick info string)
    d = DIRECTIVE_RE.match(info)
    return fence, (d.group("name") if d else None), info


def _closes(line: str, fence: str) -> bool:
    s = line.strip()
    return len(s) >= len(fence) and set(s) == {fence[0]}


def _find_close(lines: list[str], start: int, fence: str) -> int:
    """Index of the line closing the block opened at START (len(lines) if it never closes)."""
    for j in range(start + 1, len(lines)):
        if _closes(lines[j], fence):
            return j
    return len(lines)


def strip_solutions(text: str, name: str = "<page>") -> Stripped:
    """Remove every solution (gated and plain, backtick or colon fences) from MyST TEXT.

    Fenced code (``` blocks, ``code-cell``...) is copied verbatim, so a page that *shows* the
    syntax of a solution inside a code block keeps it. Other directives are scanned inside, so
    a solution nested in e.g. a ``{dropdown}`` is removed too.
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    res = Stripped("")
    stack: list[str] = []        # fences of the enclosing (scanned) directives
    i = 0
    while i < len(lines):
        if stack and _closes(lines[i], stack[-1]):
            out.append(lines[i])
            stack.pop()
            i += 1
            continue
        opened = _open_fence(lines[i])
        if opened is None:
            out.append(lines[i])
            i += 1
            continue
        fence, directive, _ = opened
        if directive in SOLUTION_DIRECTIVES:
            if directive == "solution-end":
                raise StripError(f"{name}:{i + 1}: solution-end without solution-start")
            close = _find_close(lines, i, fence)
            if close == len(lines):
                raise StripError(f"{name}:{i + 1}: unclosed {{{directive}}} fence")
            end = close
            if directive == "solution-start":
                # skip everything up to and including the matching solution-end directive
                j = close + 1
                while j < len(lines):
                    o = _open_fence(lines[j])
                    if o and o[1] == "solution-end":
                        break
                    if o and o[1] == "solution-start":
                        raise StripError(f"{name}:{j + 1}: solution-start inside a solution")
                    j += 1
                if j == len(lines):
                    raise StripError(f"{name}:{i + 1}: solution-start without solution-end")
                end = _find_close(lines, j, _open_fence(lines[j])[0])
                if end == len(lines):
                    raise StripError(f"{name}:{j + 1}: unclosed {{solution-end}} fence")
            block = lines[i:end + 1]
            res.solutions.append("".join(block))
            for ln in lines[i:close + 1]:
                m = LABEL_RE.match(ln)
                if m:
                    res.labels.append(m.group(1))
            i = end + 1
            # no blank-line pile-up where a block was
            if out and out[-1].strip() == "" and i < len(lines) and lines[i].strip() == "":
                i += 1
            continue
        if directive is None or directive in LITERAL_DIRECTIVES:
            close = _find_close(lines, i, fence)
            out.extend(lines[i:close + 1])
            i = close + 1
            continue
        out.append(lines[i])     # another directive: keep it, scan its body
        stack.append(fence)
        i += 1
    text_out = "".join(out)
    if res.labels:
        text_out = _unlink(text_out, res.labels)
    res.text = text_out
    leftover = find_solution_directives(text_out)
    if leftover:
        raise StripError(f"{name}: solution directive left after stripping: {leftover[:3]}")
    return res


def _unlink(text: str, labels: list[str]) -> str:
    """Turn references to removed solutions into plain text (they would break -n -W)."""
    alt = "|".join(re.escape(lab) for lab in labels)
    # {ref}`text <label>` / {numref}`text <label>` -> text
    text = re.sub(r"\{(?:ref|numref|prf:ref|doc)\}`([^`<]*?)\s*<(?:%s)>`" % alt, r"\1", text)
    # {ref}`label` -> "the solution"
    text = re.sub(r"\{(?:ref|numref|prf:ref)\}`(?:%s)`" % alt, "the solution", text)
    # [text](#label) -> text
    text = re.sub(r"\[([^\]]*)\]\(#(?:%s)\)" % alt, r"\1", text)
    return text


def find_solution_directives(text: str) -> list[str]:
    """Lines that open a solution directive (outside literal code blocks)."""
    found = []
    lines = text.splitlines()
    stack: list[str] = []
    i = 0
    while i < len(lines):
        if stack and _closes(lines[i], stack[-1]):
            stack.pop()
            i += 1
            continue
        o = _open_fence(lines[i])
        if o and o[1] in SOLUTION_DIRECTIVES:
            found.append(lines[i].strip())
        if o and (o[1] is None or o[1] in LITERAL_DIRECTIVES):
            i = _find_close(lines, i, o[0]) + 1
            continue
        if o and o[1] not in SOLUTION_DIRECTIVES:
            stack.append(o[0])
        i += 1
    return found


# --------------------------------------------------------------------------- leak probes
_DIRECTIVE_LINE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})")
_OPTION_LINE = re.compile(r"^\s*:[A-Za-z_-]+:")


def normalize(text: str, markup: bool = False) -> str:
    """Text as a reader sees it: whitespace collapsed; for MARKUP (HTML) also tags dropped
    and entities decoded (a raw ``<`` only occurs in tags there)."""
    if markup:
        text = re.sub(r"<[^<>]+>", " ", text)
        text = html.unescape(text)
    text = text.replace("\\n", " ").replace('\\"', '"')      # JSON-escaped notebook sources
    return re.sub(r"\s+", " ", text)


def solution_probes(solution_block: str, page_text: str, min_len: int = 16,
                    student_text: str = "") -> list[str]:
    """Distinctive phrases of one solution: runs of plain words (>= MIN_LEN characters) from
    its body lines, skipping fences, options and phrases that also occur outside solutions
    (elsewhere in the page, or in STUDENT_TEXT: the stripped pages and the package sources;
    e.g. ``import numpy as np``), so that finding one in an output file means a leak."""
    outside = normalize(page_text.replace(solution_block, " ")) + " " + student_text
    probes = []
    for line in solution_block.splitlines():
        if _DIRECTIVE_LINE.match(line) or _OPTION_LINE.match(line) or not line.strip():
            continue
        # plain-word runs survive Markdown/HTML rendering and syntax highlighting
        # (no quotes or dashes: smartquotes change them in the HTML)
        for run in re.findall(r"[A-Za-z0-9][A-Za-z0-9 ,;()]*[A-Za-z0-9)]", line):
            run = re.sub(r"\s+", " ", run).strip()
            if len(run) >= min_len and run not in outside and run not in probes:
                probes.append(run)
    return probes


def output_text(path: Path) -> str:
    """Searchable text of one output file (notebooks: every cell's source and outputs)."""
    raw = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(raw)
            parts = []
            for c in nb.get("cells", []):
                src = c.get("source", "")
                parts.append("".join(src) if isinstance(src, list) else src)
                for o in c.get("outputs", []):
                    parts.append(json.dumps(o))
            raw = "\n".join(parts) + "\n" + raw
        except json.JSONDecodeError:
            pass
    return normalize(raw, markup=path.suffix.lower() in (".html", ".htm", ".xml"))


TEXT_SUFFIXES = {".html", ".htm", ".md", ".ipynb", ".txt", ".js", ".json", ".py", ".rst", ".xml", ""}


def scan_leaks(probes: dict[str, list[str]], *roots: Path) -> list[tuple[str, str, str]]:
    """(output file, source page, probe) for every probe found in a text file under ROOTS."""
    leaks = []
    flat = [(page, p) for page, ps in probes.items() for p in ps]
    if not flat:
        return leaks
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if not path.is_file() or path.suffix.lower() not in TEXT_SUFFIXES:
                continue
            if path.stat().st_size > 50_000_000:
                continue
            text = output_text(path)
            for page, p in flat:
                if p in text:
                    leaks.append((str(path), page, p))
    return leaks


# --------------------------------------------------------------------------- the tree
def toc_pages(root: Path) -> list[str]:
    """Every page of _toc.yml (root, chapters, sections), as paths without suffix."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    pages.append(str(node[key]))
            for v in node.values():
                if isinstance(v, (list, dict)):
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return pages


def page_file(root: Path, page: str) -> Path | None:
    for suffix in (".md", ".ipynb", ".rst"):
        p = root / f"{page}{suffix}"
        if p.exists():
            return p
    p = root / page
    return p if p.exists() and p.is_file() else None


def copy_tree(src: Path, dst: Path) -> None:
    """Copy the repository SRC to DST without VCS, environments, builds and caches."""
    top = Path(src).resolve()
    generated = set()
    try:   # pages generated during a build (sphinx-autoapi), perhaps left by a running build
        import yaml

        cfg = yaml.safe_load((top / "_config.yml").read_text()) or {}
        root = ((cfg.get("sphinx") or {}).get("config") or {}).get("autoapi_root")
        if root:
            generated.add((top / root).resolve())
    except Exception:    # no or unreadable config: nothing generated to skip
        pass

    def ignore(d, names):
        at_top = Path(d).resolve() == top
        return [n for n in names if n in SKIP_DIRS or n.endswith(SKIP_SUFFIXES)
                or (at_top and n in SKIP_TOP) or (Path(d).resolve() / n) in generated]

    shutil.copytree(src, dst, ignore=ignore, symlinks=False, dirs_exist_ok=True)


def read_page(path: Path) -> str:
    """MyST text of a page (.ipynb pages are converted with jupytext)."""
    if path.suffix == ".ipynb":
        import jupytext

        nb = jupytext.read(path)
        for c in nb.cells:
            c.pop("outputs", None)
            c.pop("execution_count", None)
        return jupytext.writes(nb, fmt="md:myst")
    return path.read_text()


def strip_tree(tree: Path) -> dict[str, Stripped]:
    """Strip every MyST page and notebook under TREE in place. Returns {relative path: result}."""
    results = {}
    for path in sorted(list(tree.rglob("*.md")) + list(tree.rglob("*.ipynb"))):
        rel = path.relative_to(tree)
        if any(part in SKIP_DIRS for part in rel.parts):
            continue
        text = read_page(path)
        res = strip_solutions(text, str(rel))
        if path.suffix == ".ipynb":
            md = path.with_suffix(".md")
            if md.exists():
                raise StripError(f"{rel}: both .ipynb and .md exist; cannot convert")
            path.unlink()
            path = md
            rel = path.relative_to(tree)
        if res.solutions or path.read_text() != res.text:
            path.write_text(res.text)
        results[str(rel)] = res
    return results


def write_config(tree: Path, branch: str, source: Path = ROOT) -> None:
    """Override the top-level _config.yml for the student edition."""
    import yaml

    cfg_path = tree / "_config.yml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["title"] = f"{cfg.get('title', 'Course')} (student edition)"
    repo = cfg.setdefault("repository", {})
    repo["branch"] = branch
    # the tree is no clone: write down the repository and site the source derives (if any)
    s = postbuild.publish.site(source)
    if s.repository:
        repo["url"] = s.repository
    if s.baseurl:
        cfg.setdefault("html", {})["baseurl"] = s.baseurl
    html_cfg = cfg.setdefault("html", {})
    html_cfg["use_edit_page_button"] = False
    html_cfg["announcement"] = "Student edition: solutions are not included."
    # the tree has no tools/: the publish extension is loaded from this folder
    if "publish" in ((cfg.get("sphinx") or {}).get("local_extensions") or {}):
        cfg["sphinx"]["local_extensions"]["publish"] = str(Path(__file__).resolve().parent)
    sphinx_cfg = cfg.setdefault("sphinx", {}).setdefault("config", {})
    # the sources are stripped, so the .md download offers the student version
    sphinx_cfg["html_copy_source"] = True
    cfg_path.write_text("# student edition: generated by tools/student.py\n"
                        + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))


def notebook_name(page: str) -> str:
    """notebooks/XX.ipynb for the page book/XX (the layout the Colab links use)."""
    rel = page[len("book/"):] if page.startswith("book/") else page
    return f"notebooks/{rel}.ipynb"


def write_notebooks(tree: Path, pages: list[str], dest: Path) -> list[Path]:
    """The reader's notebooks of the (stripped) toc pages under DEST/notebooks/: outputs
    stripped, install cell first (tools/postbuild.py's make_notebook)."""
    written = []
    for page in pages:
        src = page_file(tree, page)
        if src is None or src.suffix != ".md" or not postbuild.is_notebook(src):
            continue
        target = dest / notebook_name(page)
        postbuild.write_if_changed(target, postbuild.make_notebook(src, postbuild.publish.site(tree)))
        written.append(target)
    return written


def drop_instructor_pages(tree: Path) -> list[str]:
    """Remove the instructor-only pages from TREE and its _toc.yml; returns those removed."""
    import yaml

    removed = []
    for page in INSTRUCTOR_PAGES:
        f = page_file(tree, page)
        if f is not None:
            f.unlink()
            removed.append(page)
    toc_path = tree / "_toc.yml"
    toc = yaml.safe_load(toc_path.read_text())

    def prune(node):
        if isinstance(node, list):
            return [p for p in (prune(n) for n in node) if p is not None]
        if isinstance(node, dict):
            if node.get("file") in INSTRUCTOR_PAGES:
                return None
            out = {k: prune(v) if isinstance(v, (list, dict)) else v for k, v in node.items()}
            for key in ("chapters", "sections", "parts"):   # a part left without chapters goes
                if key in node and node[key] and not out[key]:
                    return None
            return out
        return node

    toc_path.write_text(yaml.safe_dump(prune(toc), sort_keys=False))
    return removed


def write_readme(tree: Path, repo: Path) -> None:
    """The student branch's README: the folders that tree holds (not the main repository's)."""
    import yaml

    cfg = yaml.safe_load((tree / "_config.yml").read_text()) or {}
    site = (cfg.get("html") or {}).get("baseurl") or "(not set: html.baseurl in _config.yml)"
    rows = "\n".join(f"| `{d}/` | {what} |" for d, what in STUDENT_FOLDERS.items() if (repo / d).is_dir())
    (repo / "README.md").write_text(STUDENT_README.format(title=cfg.get("title", "Course"), site=site, rows=rows))


def point_downloads_at_notebooks(html_dir: Path, pages: list[str]) -> None:
    """The download button's .ipynb: the stripped notebook, not the executed copy in _sources."""
    for page in pages:
        f = html_dir / f"{page}.html"
        if f.exists():
            postbuild.rewrite_links(f, page, Path(page).name)


COLAB_RE = re.compile(r"(https://colab\.research\.google\.com/github/[^\"'\s<>]*?/blob/[^/\"'\s<>]+/)"
                      r"([^\"'\s<>]+?)\.(md|ipynb)")


def rewrite_colab_links(html_dir: Path, pages: list[str], root_prefix: str = "") -> int:
    """Point Colab links at the generated notebooks/XX.ipynb (Colab cannot open .md)."""
    mapping = {p: notebook_name(p)[: -len(".ipynb")] for p in pages}
    n = 0
    for f in html_dir.rglob("*.html"):
        s = f.read_text()

        def sub(m):
            path = m.group(2)
            if root_prefix and path.startswith(root_prefix):
                path = path[len(root_prefix):]
            return f"{m.group(1)}{mapping.get(path, path)}.ipynb"

        new = COLAB_RE.sub(sub, s)
        if new != s:
            n += 1
            f.write_text(new)
    return n


def build(tree: Path, work: Path, jb: Path) -> None:
    cmd = [str(jb), "build", str(tree), "--path-output", str(work), "-n", "-W", "--keep-going"]
    print("+", " ".join(cmd), flush=True)
    import os

    env = dict(os.environ)
    # the same defaults as dev.py's build environment (when run directly, not through dev.py)
    for k, v in {"LINFLOW_PROGRESS": "0", "LINFLOW_STATIC": "1", "MPLBACKEND": "Agg",
                 "PYDEVD_DISABLE_FILE_VALIDATION": "1"}.items():
        env.setdefault(k, v)
    env["PATH"] = f"{Path(jb).parent}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run(cmd, cwd=tree, env=env)
    if r.returncode:
        reports = work / "_build" / "html" / "reports"
        for log in sorted(reports.glob("**/*.log")) if reports.exists() else []:
            print(f"--- {log}\n{log.read_text()[-4000:]}")
        raise SystemExit(f"student edition: jupyter-book build failed (exit {r.returncode})")


def _sources(source: Path, patterns=("*.md", "*.ipynb")):
    """Pages (or other files) of SOURCE that go into the student tree (the walk prunes the
    skipped folders, e.g. .venv, instead of filtering them afterwards)."""
    import fnmatch
    import os

    found = []
    for d, dirs, files in os.walk(source):
        here = Path(d)
        at_top = here == Path(source)
        dirs[:] = sorted(n for n in dirs if not (n in SKIP_DIRS or n.endswith(SKIP_SUFFIXES)
                                                 or (at_top and n in SKIP_TOP)))
        for f in files:
            if any(fnmatch.fnmatch(f, pat) for pat in patterns):
                found.append(here / f)
    for path in sorted(found):
        yield path, path.relative_to(source)


def collect_probes(source: Path) -> tuple[dict[str, list[str]], int]:
    """Leak probes of every solution in every page of SOURCE (not only the toc)."""
    pages = {rel: read_page(path) for path, rel in _sources(source)}
    results = {rel: strip_solutions(text, str(rel)) for rel, text in pages.items()}
    # what students legitimately see: stripped pages + the package (docstrings reach the API pages)
    student = [results[rel].text for rel in pages]
    student += [p.read_text(errors="replace")
                for p, _ in _sources(source, ("*.py", "*.bib", "*.yml", "*.yaml", "*.txt", "*.toml"))]
    student_text = normalize("\n".join(student))
    probes, n = {}, 0
    for rel, text in pages.items():
        res = results[rel]
        n += len(res.solutions)
        ps = [p for block in res.solutions for p in solution_probes(block, text, student_text=student_text)]
        if ps:
            probes[str(rel)] = ps
    # the otter assignment masters: solution lines and hidden tests
    for master in sorted((source / "assignments").glob("*.md")):
        if master.name.upper().startswith("README"):
            continue
        ps = [p for p in assignment_probes(master.read_text()) if p not in student_text]
        if ps:
            probes[str(master.relative_to(source))] = ps
    return probes, n


def assignment_probes(master: str) -> list[str]:
    """What the student version of an Otter Assign master must not contain: every line
    marked ``# SOLUTION``, every line of a ``# BEGIN SOLUTION`` ... ``# END SOLUTION``
    block inside code, and the names of the hidden tests."""
    lines = [ln.rsplit("# SOLUTION", 1)[0] for ln in master.splitlines()
             if ln.rstrip().endswith("# SOLUTION")]
    for block in re.findall(r"# BEGIN SOLUTION(?: NO PROMPT)?\n(?!```)(.*?)# END SOLUTION", master, flags=re.S):
        lines += block.splitlines()
    lines += re.findall(r'hidden:\s*true\s*\n"""\s*# END TEST CONFIG\s*\ndef (test_\w+)', master)
    out = []
    for ln in lines:
        p = normalize(ln).strip()
        if len(p) >= 12 and p not in out:
            out.append(p)
    return out


def make_student_edition(source: Path = ROOT, out: Path = DEFAULT_OUT, branch: str = "student",
                         assignments: bool = True, jb: Path | None = None,
                         keep_tree: bool = False) -> dict:
    """Build the student edition of the book at SOURCE into OUT (html/, repo/). Returns a summary."""
    source, out = Path(source).resolve(), Path(out).resolve()
    jb = jb or Path(sys.executable).parent / "jupyter-book"
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="student-tree-"))
    tree = tmp / "src"
    try:
        copy_tree(source, tree)
        drop_instructor_pages(tree)
        stripped = strip_tree(tree)
        n_solutions = sum(len(r.solutions) for r in stripped.values())
        write_config(tree, branch, source)
        pages = toc_pages(tree)
        missing = [p for p in pages if page_file(tree, p) is None]
        if missing:
            raise SystemExit(f"student edition: pages in _toc.yml without a file: {missing}")

        work = out / "_work"
        build(tree, work, jb)
        html_out = out / "html"
        if html_out.exists():
            shutil.rmtree(html_out)
        shutil.copytree(work / "_build" / "html", html_out)

        repo = out / "repo"
        if repo.exists():
            shutil.rmtree(repo)
        shutil.copytree(tree, repo, ignore=shutil.ignore_patterns("_build", ".jupyter_cache"))
        nbs = write_notebooks(tree, pages, repo)
        # the same notebooks as downloads on the site
        for nb in nbs:
            dst = html_out / "_notebooks" / nb.relative_to(repo / "notebooks")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(nb, dst)
        n_links = rewrite_colab_links(html_out, pages)
        point_downloads_at_notebooks(html_out, pages)
        postbuild.publish.build_wheel(html_out / postbuild.publish.WHEELS)   # the install cells' wheel

        n_assign = 0
        if assignments and (source / "assignments").is_dir():
            n_assign = _student_assignments(source, repo / "assignments", work / "assignments")
        write_readme(tree, repo)

        probes, n_orig = collect_probes(source)
        leaks = scan_leaks(probes, html_out, repo)
        summary = {"pages": len(pages), "solutions_removed": n_solutions,
                   "solutions_in_sources": n_orig, "notebooks": len(nbs),
                   "colab_links_rewritten": n_links, "assignments": n_assign,
                   "probes": sum(len(v) for v in probes.values()), "leaks": leaks,
                   "html": str(html_out), "repo": str(repo)}
        if leaks:
            for f, page, p in leaks[:20]:
                print(f"LEAK: {f}: text of a solution in {page}: {p!r}")
            raise SystemExit(f"student edition: {len(leaks)} solution leak(s) found")
        return summary
    finally:
        if keep_tree:
            print(f"stripped tree kept at {tree}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _student_assignments(source: Path, dest: Path, build_dir: Path) -> int:
    """Student versions of the otter assignments (tools/assign.py), or a note if otter is absent."""
    try:
        import otter  # noqa: F401
    except ImportError:
        print("student edition: otter-grader is not installed; assignments skipped "
              "(pip install 'linflow[test]')")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import assign

    built = assign.build_all(source / "assignments", build_dir, run_tests=False)
    dest.mkdir(parents=True, exist_ok=True)
    for name, d in built.items():
        shutil.copytree(d / "student", dest / name, dirs_exist_ok=True)
    return len(built)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (html/, repo/)")
    ap.add_argument("--source", type=Path, default=ROOT, help="book root (with _config.yml, _toc.yml)")
    ap.add_argument("--branch", default="student", help="branch the launch buttons point at")
    ap.add_argument("--no-assignments", action="store_true", help="skip the otter assignments")
    ap.add_argument("--keep-tree", action="store_true", help="keep the stripped temporary tree")
    a = ap.parse_args(argv)
    s = make_student_edition(a.source, a.out, a.branch, not a.no_assignments, keep_tree=a.keep_tree)
    print(f"student edition: {s['pages']} pages, {s['solutions_removed']} solutions removed, "
          f"{s['notebooks']} notebooks, {s['assignments']} assignments, {s['probes']} leak probes "
          f"checked, no leaks\n  site: {s['html']}\n  student branch tree: {s['repo']}")


if __name__ == "__main__":
    main()
