#!/usr/bin/env python3
"""Make the distributable versions of the otter-grader assignments.

    python3 tools/assign.py [NAME ...] [--out _build/assignments] [--run-tests]

The masters are MyST notebooks ``assignments/NAME.md`` in Otter Assign format (raw cells
``# ASSIGNMENT CONFIG``, ``# BEGIN QUESTION``, ``# BEGIN SOLUTION``, ``# BEGIN TESTS``...;
hidden tests carry ``hidden: true`` in their test config). For each one this script converts
the master to ``.ipynb`` (jupytext) and runs ``otter assign``, which writes

    OUT/NAME/student/NAME.ipynb       what students get: solutions stubbed with ``...``,
                                      public tests only (``grader.check("q1")``)
    OUT/NAME/autograder/NAME.ipynb    the master with solutions (the instructor's key)
    OUT/NAME/autograder/NAME-autograder_*.zip   all tests, public and hidden (tools/grade.py)

Nothing here needs Docker or the network. ``--run-tests`` makes otter assign also run the
solutions against every test (slower; the grading tests do this through tools/grade.py).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))   # tools/publish.py
MASTERS = ROOT / "assignments"
DEFAULT_OUT = ROOT / "_build" / "assignments"


def masters(folder: Path = MASTERS) -> dict[str, Path]:
    """{name: master} for every assignment master in FOLDER (NAME.md or NAME.ipynb)."""
    found = {}
    for p in sorted(folder.glob("*.md")) + sorted(folder.glob("*.ipynb")):
        if p.name.upper().startswith("README"):
            continue
        found.setdefault(p.stem, p)
    return found


def otter_exe() -> str:
    exe = Path(sys.executable).parent / "otter"
    return str(exe) if exe.exists() else "otter"


def build_one(master: Path, out: Path, run_tests: bool = False) -> Path:
    """Run otter assign on MASTER into OUT/NAME; returns that folder."""
    import jupytext

    name = master.stem
    dest = out / name
    if dest.exists():
        shutil.rmtree(dest)
    src = out / ".masters" / name
    src.mkdir(parents=True, exist_ok=True)
    nb_path = src / f"{name}.ipynb"
    if master.suffix == ".md":
        jupytext.write(jupytext.read(master), nb_path, fmt="ipynb")
    else:
        shutil.copy2(master, nb_path)
    # support files next to the master (data, helper modules) travel with it
    support = master.parent / name
    if support.is_dir():
        shutil.copytree(support, src, dirs_exist_ok=True)
    cmd = [otter_exe(), "assign", "--no-pdfs"]
    if not run_tests:
        cmd.append("--no-run-tests")
    cmd += [str(nb_path), str(dest)]
    r = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
    if r.returncode:
        sys.stdout.write(r.stdout[-4000:])
        sys.stderr.write(r.stderr[-4000:])
        raise RuntimeError(f"otter assign failed for {name} (exit {r.returncode})")
    log = r.stdout + r.stderr
    if run_tests and ("Test case failed" in log or "❌" in log):
        sys.stdout.write(log[-6000:])
        raise RuntimeError(f"otter assign: the solutions of {name} fail their own tests")
    add_install_cell(dest / "student" / f"{name}.ipynb")
    return dest


def add_install_cell(student_nb: Path) -> None:
    """Put the install cell (linflow's wheel from the published site, and otter-grader) before
    otter's ``import otter`` cell, so the notebook runs on Colab as handed out."""
    import nbformat

    import publish

    nb = nbformat.read(student_nb, as_version=4)
    src = publish.install_source(publish.site(), '"otter-grader>=6,<8"', "otter")
    cell = nbformat.v4.new_code_cell(src, id="install-linflow-otter")
    nb.cells.insert(0, cell)
    nbformat.validate(nb)
    nbformat.write(nb, student_nb)


def autograder_zip(dest: Path) -> Path:
    zips = sorted((dest / "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise FileNotFoundError(f"no autograder zip in {dest / 'autograder'}")
    return zips[-1]


def build_all(folder: Path = MASTERS, out: Path = DEFAULT_OUT, names=None,
              run_tests: bool = False, jobs: int = 2) -> dict[str, Path]:
    found = masters(folder)
    if names:
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise SystemExit(f"unknown assignment(s) {unknown}; known: {sorted(found)}")
        found = {k: v for k, v in found.items() if k in names}
    out = Path(out).resolve()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:   # each one is an otter subprocess
        futs = {name: ex.submit(build_one, m, out, run_tests) for name, m in found.items()}
        return {name: f.result() for name, f in futs.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="assignments to build (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--masters", type=Path, default=MASTERS)
    ap.add_argument("--jobs", type=int, default=2, help="assignments built in parallel")
    ap.add_argument("--run-tests", action="store_true",
                    help="let otter assign run the solutions against all tests")
    a = ap.parse_args(argv)
    built = build_all(a.masters, a.out, a.names, a.run_tests, a.jobs)
    for name, d in built.items():
        print(f"{name}: student {d / 'student' / (name + '.ipynb')}, autograder {autograder_zip(d)}")


if __name__ == "__main__":
    main()
