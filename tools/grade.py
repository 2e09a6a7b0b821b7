#!/usr/bin/env python3
"""Grade a folder of submitted notebooks into a CSV score table, offline (no Docker).

    python3 tools/grade.py SUBMISSIONS_DIR --out scores.csv [--roster roster.txt]
                           [--assignments NAME ...] [--jobs 2] [--timeout 600]
                           [--memory 4096] [--seed N]

Layout of SUBMISSIONS_DIR: one folder per student, holding that student's notebooks,

    SUBMISSIONS_DIR/ada/two_layer_rates.ipynb
    SUBMISSIONS_DIR/ada/three_layers.ipynb
    SUBMISSIONS_DIR/bob/two_layer_rates.ipynb     ...

A notebook is matched to its assignment by the name otter wrote into its metadata, else by
its file name. (Notebooks directly in SUBMISSIONS_DIR count as one student each, named after
the file.) Students are the folders plus, with ``--roster``, every name in the roster file
(one a line), so a student who submitted nothing is listed too.

Each submission is graded in two phases (tools/grading/), with every test, public and hidden,
from the assignment's autograder zip (tools/assign.py builds them into _build/assignments
when missing or older than the master). A worker subprocess per submission is phase 2: it
draws the grading seed, starts phase 1 (the notebook's code cells in a process of their own:
time and memory limits, banned modules refused, and where the grader is root on Linux no
network, the grader's folders hidden, run as ``nobody``), takes the graded answers from it as
plain data, and runs the tests on them. A submission that raises, loops, exhausts its memory
or kills its process cannot stop the others, and what it prints is never read.

One row per (student, assignment): ``status`` is one of

    graded                all cells ran
    graded-with-errors    some cells raised, or some answers were not plain data (listed in
                          ``errors``); the questions they broke score 0, the others are
                          graded normally
    empty                 the file is empty, has no cells, or no answer cell was changed
    missing               no notebook for this assignment
    failed                the grader itself could not run it (unreadable file, wrong
                          assignment, timeout, the process ended before it answered...);
                          ``errors`` says why

with ``score``, ``possible``, ``percent``, one column per question, ``failures`` (the tests
that failed, hidden ones included), ``seed`` (``--seed`` regrades with it) and ``isolation``.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import assign  # noqa: E402

MARK = "@@GRADE-RESULT@@"
STUB_RE = re.compile(r"^\s*([A-Za-z_][\w, ]*=\s*)?\.\.\.\s*(#.*)?$")


# --------------------------------------------------------------------------- worker
def _worker(submission: str, autograder: str, spec: str) -> None:
    """Phase 2 for one submission (runs in a subprocess of its own); prints MARK + JSON."""
    from grading.phase2 import grade_submission

    a = json.loads(spec)
    res = grade_submission(Path(submission), Path(autograder), a["banned"],
                           [Path(p) for p in a["hide"]], a["timeout"], a["memory_mb"], a["seed"])
    print(MARK + json.dumps(res))


def banned_of(key_nb: Path) -> list[str]:
    """The modules an assignment bans (``linflow_grading: banned:`` in its master's front
    matter, which the key notebook keeps in its metadata)."""
    try:
        meta = json.loads(key_nb.read_text()).get("metadata", {})
    except (OSError, json.JSONDecodeError):
        return []
    return list(meta.get("linflow_grading", {}).get("banned", []))


def hidden_paths(sub_dir: Path, autograders: Path) -> list[str]:
    """What phase 1 must not see: the grader, the masters, the tests, the autograders, the
    submissions (other students' too) and the git store, where they exist."""
    paths = [ROOT / "assignments", ROOT / "tests", ROOT / "tools", ROOT / "_build", autograders,
             sub_dir]
    git = ROOT / ".git"
    if git.is_file():   # a worktree: "gitdir: COMMON/worktrees/NAME"
        m = re.match(r"gitdir:\s*(.+)", git.read_text().strip())
        if m:
            paths.append(Path(m.group(1)).parent.parent)
    elif git.is_dir():
        paths.append(git)
    return [str(Path(p).resolve()) for p in paths if Path(p).exists()]


# --------------------------------------------------------------------------- helpers
def answer_sources(nb) -> list[str]:
    return ["".join(c.get("source", "")) if isinstance(c.get("source"), list) else c.get("source", "")
            for c in nb.get("cells", [])
            if c.get("cell_type") == "code" and "otter_answer_cell" in c.get("metadata", {}).get("tags", [])]


def is_unanswered(nb: dict, template: dict | None) -> bool:
    """No cells, only blank code, or every answer cell still as distributed."""
    cells = nb.get("cells", [])
    code = ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]
    if not cells or not any(s.strip() for s in code):
        return True
    answers = answer_sources(nb)
    if not answers:
        return False
    stubs = set(answer_sources(template)) if template else set()
    for src in answers:
        if src in stubs:
            continue
        lines = [ln for ln in src.splitlines() if ln.strip()]
        if lines and all(STUB_RE.match(ln) for ln in lines):
            continue
        return False
    return True


def read_notebook(path: Path):
    """(notebook dict or None, problem or None)."""
    if path.stat().st_size == 0:
        return None, "empty file"
    try:
        nb = json.loads(path.read_text(errors="replace"))
    except json.JSONDecodeError as e:
        return None, f"not a notebook (invalid JSON: {e.msg} at line {e.lineno})"
    if not isinstance(nb, dict) or "cells" not in nb:
        return None, "not a notebook (no cells)"
    return nb, None


def assignment_of(path: Path, nb: dict | None, known: set[str]) -> str | None:
    if nb is not None:
        name = nb.get("metadata", {}).get("otter", {}).get("assignment_name")
        if name in known:
            return name
    stem = path.stem
    for name in known:
        if stem == name or stem.startswith(name) or stem.endswith(name):
            return name
    return None


def ensure_autograders(names, out: Path, rebuild: bool = False) -> dict[str, Path]:
    """Autograder zip per assignment, building it when missing or older than its master."""
    masters = assign.masters()
    zips = {}
    for name in names:
        dest = out / name
        try:
            z = assign.autograder_zip(dest)
            stale = rebuild or (name in masters and masters[name].stat().st_mtime > z.stat().st_mtime)
        except FileNotFoundError:
            z, stale = None, True
        if stale:
            if name not in masters:
                raise SystemExit(f"no master for assignment {name!r} in {assign.MASTERS}")
            assign.build_one(masters[name], out)
            z = assign.autograder_zip(dest)
        zips[name] = z
    return zips


def grade_one(sub: Path, autograder: Path, spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(sub), str(autograder),
           json.dumps(spec)]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1", MPLBACKEND="Agg")
    # own process group, so that a timeout also ends the phase-1 process the worker started
    posix = os.name == "posix"
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=posix)
    try:
        # phase 1 has TIMEOUT; phase 2's own checks (a few flows) get a margin on top
        stdout, stderr = p.communicate(timeout=timeout + 120)
    except subprocess.TimeoutExpired:
        if posix:
            import signal

            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            p.kill()
        p.communicate()
        return {"status": "failed", "errors": [f"timeout after {timeout:.0f} s"]}
    r = subprocess.CompletedProcess(cmd, p.returncode, stdout, stderr)
    for line in reversed(r.stdout.splitlines()):
        if line.startswith(MARK):
            res = json.loads(line[len(MARK):])
            break
    else:
        tail = (r.stderr or r.stdout).strip().splitlines()
        why = tail[-1] if tail else f"exit {r.returncode}"
        return {"status": "failed", "errors": [why[:300]]}
    if res["catastrophic"]:
        return {**res, "status": "failed", "errors": [res["catastrophic"][:300], *res["errors"]]}
    res["status"] = "graded-with-errors" if res["errors"] else "graded"
    return res


def collect(sub_dir: Path, known: set[str], roster: list[str]):
    """{(student, assignment): path or ('problem', path, why)}, students, stray files."""
    found, students, stray = {}, list(roster), []
    entries = sorted(sub_dir.iterdir()) if sub_dir.is_dir() else []
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir():
            student, files = e.name, sorted(e.glob("*.ipynb"))
        elif e.suffix == ".ipynb":
            student, files = e.stem, [e]
        else:
            continue
        if student not in students:
            students.append(student)
        for f in files:
            if ".ipynb_checkpoints" in f.parts:
                continue
            nb, _ = read_notebook(f)
            name = assignment_of(f, nb, known)
            if name is None and len(known) == 1:
                name = next(iter(known))
            if name is None:
                stray.append((student, f))
                continue
            found.setdefault((student, name), f)
    return found, students, stray


def grade_folder(sub_dir: Path, out_csv: Path, names=None, roster: list[str] = (),
                 jobs: int = 1, timeout: float = 600, autograders: Path | None = None,
                 rebuild: bool = False, memory_mb: int = 4096, seed: int | None = None) -> list[dict]:
    sub_dir = Path(sub_dir)
    all_names = sorted(assign.masters())
    names = sorted(names) if names else all_names
    ag_out = Path(autograders) if autograders else assign.DEFAULT_OUT
    zips = ensure_autograders(names, ag_out, rebuild)
    templates = {}
    for name in names:
        t = ag_out / name / "student" / f"{name}.ipynb"
        templates[name] = json.loads(t.read_text()) if t.exists() else None
    found, students, stray = collect(sub_dir, set(names), list(roster))
    hide = hidden_paths(sub_dir, ag_out)
    specs = {name: {"banned": banned_of(ag_out / name / "autograder" / f"{name}.ipynb"),
                    "hide": hide, "timeout": timeout, "memory_mb": memory_mb, "seed": seed}
             for name in names}

    rows, jobs_list = [], []
    for student in students:
        for name in names:
            row = {"student": student, "assignment": name}
            rows.append(row)
            path = found.get((student, name))
            if path is None:
                row.update(status="missing", errors=[])
                continue
            row["file"] = str(path)
            nb, problem = read_notebook(path)
            if problem == "empty file":
                row.update(status="empty", errors=[problem])
            elif problem:
                row.update(status="failed", errors=[problem])
            elif is_unanswered(nb, templates[name]):
                row.update(status="empty", errors=["no answer given"])
            else:
                jobs_list.append((row, path, zips[name], name))
    for student, f in stray:
        rows.append({"student": student, "assignment": "?", "file": str(f), "status": "failed",
                     "errors": ["not a notebook of a known assignment"]})

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        futs = {ex.submit(grade_one, p, z, specs[name], timeout): row
                for row, p, z, name in jobs_list}
        for fut in cf.as_completed(futs):
            row = futs[fut]
            try:
                row.update(fut.result())
            except Exception as e:   # never let one submission stop the table
                row.update(status="failed", errors=[f"{type(e).__name__}: {e}"])

    # question columns and points: from a reference run when a row has them, else the tests
    possible = {name: _points(zips[name]) for name in names}
    qcols = []
    for name in names:
        for q in possible[name]:
            if q not in qcols:
                qcols.append(q)
    for row in rows:
        pts = possible.get(row["assignment"], {})
        qs = row.get("questions", {})
        row["possible"] = sum(pts.values()) if pts else row.get("possible", 0)
        row["score"] = sum(v["score"] for v in qs.values()) if qs else 0.0
        for q in qcols:
            row[q] = (qs[q]["score"] if q in qs else (0.0 if q in pts else ""))
        row["percent"] = round(100 * row["score"] / row["possible"], 2) if row["possible"] else 0.0

    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    cols = ["student", "assignment", "status", "score", "possible", "percent", *qcols, "errors",
            "failures", "seed", "isolation", "file"]
    with out_csv.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({**row, "errors": " | ".join(row.get("errors", [])),
                        "failures": " | ".join(row.get("failures", [])),
                        "score": _num(row["score"]), "possible": _num(row["possible"])})
    return rows


def _num(x):
    return int(x) if float(x).is_integer() else round(float(x), 4)


def _points(zip_path: Path) -> dict[str, float]:
    """{question: points} from the autograder's test files (all tests, hidden included)."""
    from grading.phase2 import load_questions

    return {q.name: q.points for q in load_questions(zip_path).values()}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        _worker(argv[1], argv[2], argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("submissions", type=Path)
    ap.add_argument("--out", type=Path, default=Path("scores.csv"))
    ap.add_argument("--assignments", nargs="*", help="assignments to grade (default: all)")
    ap.add_argument("--roster", type=Path, help="file with one student name per line")
    ap.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per submission")
    ap.add_argument("--autograders", type=Path, help=f"default {assign.DEFAULT_OUT}")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the autograder zips")
    ap.add_argument("--memory", type=int, default=4096,
                    help="MiB of address space for a submission's process")
    ap.add_argument("--seed", type=int, default=None,
                    help="grading seed for every submission (default: a fresh random one each, "
                         "written to the seed column, so a regrade can reproduce it)")
    a = ap.parse_args(argv)
    if not a.submissions.is_dir():
        raise SystemExit(f"{a.submissions} is not a folder")
    roster = [ln.strip() for ln in a.roster.read_text().splitlines() if ln.strip()] if a.roster else []
    t0 = time.time()
    rows = grade_folder(a.submissions, a.out, a.assignments, roster, a.jobs, a.timeout,
                        a.autograders, a.rebuild, a.memory, a.seed)
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"graded {len(rows)} (student, assignment) pairs in {time.time() - t0:.1f} s: "
          + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + f" -> {a.out}")


if __name__ == "__main__":
    main()
