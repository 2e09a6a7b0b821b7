"""The otter-grader assignments (assignments/, tools/assign.py) and the offline grader
(tools/grade.py), for real: otter assign builds every assignment, and the grading command
runs actual notebooks (phase 1, in their own processes) and every public and hidden test
(phase 2) on what they export (no Docker, no mocks).

* the student versions hold no solution and no hidden test;
* the reference solutions score full marks;
* a wrong submission loses exactly the points of the questions it gets wrong (also when
  the public tests pass and only a hidden one fails);
* a submission that raises is graded, reported with its exception, and the table is
  written; one that kills its kernel is reported too;
* an empty file, a notebook without cells, an unanswered notebook and a missing notebook are
  all reported, with 0 points;
* gamed submissions fail: zeroed weights (the hidden tests rebuild the problem data
  themselves), answers copied from what the public tests compare them with (gd_vs_flow's
  prediction, drift and order); tests/test_grading_gamed.py has the other attacks;
* a call to ``lf.bounds`` where the assignment bans it fails in the notebook with a message
  that says so, and costs nothing else when the answers were computed honestly before it;
* every row says the seed it was graded with, and a regrade with that seed gives the same
  scores;
* the student notebooks start with an install cell (the published wheel and otter-grader).
"""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("otter", reason="otter-grader is in the test extras: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import assign  # noqa: E402
from support import shared_once  # noqa: E402

NAMES = ["deep_unimodal", "gd_vs_flow", "three_layers", "two_layer_rates"]
POINTS = {"two_layer_rates": {"q1": 2, "q2": 3, "q3": 2, "q4": 3},
          "three_layers": {"q1": 2, "q2": 3, "q3": 3, "q4": 2},
          "deep_unimodal": {"q1": 2, "q2": 3, "q3": 2, "q4": 3},
          "gd_vs_flow": {"q1": 3, "q2": 2, "q3": 3, "q4": 2}}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    def build(out):
        return {name: str(d) for name, d in assign.build_all(out=out).items()}

    dirs = {k: Path(v) for k, v in shared_once(tmp_path_factory, "assignments", build).items()}
    assert sorted(dirs) == NAMES
    return next(iter(dirs.values())).parent, dirs


def _key(dirs, name) -> dict:
    return json.loads((dirs[name] / "autograder" / f"{name}.ipynb").read_text())


def _edit(nb: dict, startswith: str, fn) -> dict:
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c["cell_type"] == "code" and startswith in src:
            c["source"] = fn(src)
            return nb
    raise AssertionError(f"no code cell containing {startswith!r}")


def _write(path: Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb))


# gamed submissions: (student, assignment) -> [(text of a key's cell, code appended to it)]
GAMED_EDITS = {
    # zeroed weights right after the set-up cell: every answer is then consistent with the
    # zeroed data, which fooled hidden tests that trusted the student's Ws
    ("zeroed", "two_layer_rates"): [("Ws = (W1, W2)", "W1, W2 = 0 * W1, 0 * W2\nWs = (W1, W2)")],
    ("zeroed", "three_layers"): [("W1, W2, W3 =", "W1, W2, W3 = 0 * W1, 0 * W2, 0 * W3\nWs = (W1, W2, W3)")],
    # gd_vs_flow's prediction copied from the measured change, and the two numbers the public
    # tests accept (a drift of 0, the expected order 1) typed in
    ("gamed", "gd_vs_flow"): [
        ("def predicted_change", "def predicted_change(grads, eta):\n    return change\n\n"
                                 "predicted = predicted_change(grads, eta)"),
        ("gf_drift = max_drift", "gf_drift = 0.0"),
        ("order = float(", "order = 1.0")],
    # lf.bounds where the assignment bans it, after the honest answers: in q2 of
    # two_layer_rates, in q4 of three_layers
    ("banned", "two_layer_rates"): [
        ("delta_plus =", "delta_plus, delta_minus, gap = (float(v) for v in lf.bounds.spread_gap(Ws))")],
    ("banned", "three_layers"): [("delta_star =", "delta_star = float(lf.bounds.delta_star(Ws))")],
}


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    return shared_once(tmp_path_factory, "grading", lambda folder: _grade_all(built, folder))


def _grade_all(built, folder):
    out, dirs = built
    subs = folder / "submissions"
    # ref: the keys, under other file names (the assignment is read from the metadata)
    for name in NAMES:
        _write(subs / "ref" / f"hw-{name}-final.ipynb", _key(dirs, name))
    # wrong: in deep_unimodal, the q3 bound off by a factor 1/2 and the q4 closed form wrong
    # for eps != 1; their public tests still pass, hidden ones fail
    nb = _edit(_key(dirs, "deep_unimodal"), "bound = float(np.prod(d_tilde))",
               lambda s: s.replace("bound = float(np.prod(d_tilde))", "bound = 0.5 * float(np.prod(d_tilde))", 1))
    nb = _edit(nb, "def depth_bound", lambda s: s.replace("eps ** (L - 1)", "eps ** L", 1))
    _write(subs / "wrong" / "deep_unimodal.ipynb", nb)
    # raises: an exception in the answer to q3 of three_layers (q4 uses its results)
    nb = _edit(_key(dirs, "three_layers"), "Dbar =", lambda s: 'raise ValueError("boom in q3")\n' + s)
    _write(subs / "raises" / "three_layers.ipynb", nb)
    # crash: the kernel dies in q2 of two_layer_rates
    nb = _edit(_key(dirs, "two_layer_rates"), "def pos", lambda s: "import os\nos._exit(3)\n" + s)
    _write(subs / "crash" / "two_layer_rates.ipynb", nb)
    # empty: a 0-byte file, a notebook without cells, the unanswered student notebook, junk
    _write(subs / "empty" / "two_layer_rates.ipynb", "")
    nocells = _key(dirs, "three_layers")
    nocells["cells"] = []
    _write(subs / "empty" / "three_layers.ipynb", nocells)
    _write(subs / "empty" / "deep_unimodal.ipynb", (dirs["deep_unimodal"] / "student" / "deep_unimodal.ipynb").read_text())
    _write(subs / "empty" / "gd_vs_flow.ipynb", "{ this is not json")
    # gamed (GAMED_EDITS): code appended to cells of the keys
    for (student, name), edits in GAMED_EDITS.items():
        nb = _key(dirs, name)
        for anchor, code in edits:
            nb = _edit(nb, anchor, lambda s, code=code: s + "\n" + code + "\n")
        _write(subs / student / f"{name}.ipynb", nb)
    roster = folder / "roster.txt"
    roster.write_text("ghost\nref\n")
    csv_path = folder / "scores.csv"
    cmd = [sys.executable, str(ROOT / "tools" / "grade.py"), str(subs), "--out", str(csv_path),
           "--roster", str(roster), "--autograders", str(out), "--jobs", "2", "--timeout", "300"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    # a submission that never ends: the grader stops it at the timeout and goes on
    loop = folder / "loop"
    _write(loop / "looper" / "three_layers.ipynb",
           _edit(_key(dirs, "three_layers"), "D21 =", lambda s: "while True:\n    pass\n" + s))
    cmd = [sys.executable, str(ROOT / "tools" / "grade.py"), str(loop), "--out", str(folder / "loop.csv"),
           "--assignments", "three_layers", "--autograders", str(out), "--timeout", "10"]
    r2 = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stdout[-3000:] + r2.stderr[-3000:]
    with (folder / "loop.csv").open() as fh:
        rows += list(csv.DictReader(fh))
    return rows, r.stdout


def _table(graded):
    rows, stdout = graded
    return {(row["student"], row["assignment"]): row for row in rows}, rows, stdout


def _scores(row):
    return {q: float(row[q]) for q in ("q1", "q2", "q3", "q4")}


def test_student_versions_hold_no_solution_or_hidden_test(built):
    _, dirs = built
    for name in NAMES:
        master = (assign.MASTERS / f"{name}.md").read_text()
        secret = []
        # lines marked "# SOLUTION", and every line of "# BEGIN SOLUTION" ... "# END SOLUTION" blocks
        secret += [ln.split("# SOLUTION")[0].strip() for ln in master.splitlines() if ln.rstrip().endswith("# SOLUTION")]
        for block in re.findall(r"# BEGIN SOLUTION(?: NO PROMPT)?\n(?!```)(.*?)# END SOLUTION", master, flags=re.S):
            secret += [ln.strip() for ln in block.splitlines() if len(ln.strip()) > 12 and not ln.startswith("`")]
        hidden = re.findall(r'hidden: true\n""" # END TEST CONFIG\ndef (test_\w+)', master)
        public = re.findall(r'```\{code-cell\} ipython3\ndef (test_\w+)', master)
        assert len(hidden) == 4 and len(public) == 4, name
        student_nb = (dirs[name] / "student" / f"{name}.ipynb").read_text()
        text = json.dumps(json.loads(student_nb))  # sources and metadata (where otter keeps the public tests)
        for s in secret:
            assert s and json.dumps(s)[1:-1] not in text, (name, s)
        for t in hidden:
            assert t not in text, (name, t)
        for t in public:
            assert t in text, (name, t)
        # ... while the autograder zip has them all
        import zipfile
        z = zipfile.ZipFile(assign.autograder_zip(dirs[name]))
        tests = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("tests/"))
        for t in hidden + public:
            assert t in tests


def test_reference_solutions_score_full_marks(graded):
    table, _, _ = _table(graded)
    for name in NAMES:
        row = table[("ref", name)]
        assert row["status"] == "graded", (row["status"], row["errors"])
        assert float(row["score"]) == float(row["possible"]) == sum(POINTS[name].values())
        assert _scores(row) == {q: float(p) for q, p in POINTS[name].items()}
        assert row["errors"] == ""


def test_wrong_answers_lose_exactly_their_points(graded):
    table, _, _ = _table(graded)
    row = table[("wrong", "deep_unimodal")]
    assert row["status"] == "graded", (row["status"], row["errors"])
    want = dict(POINTS["deep_unimodal"], q3=0, q4=0)
    assert _scores(row) == {q: float(p) for q, p in want.items()}
    assert float(row["score"]) == 10 - 2 - 3


def test_raising_submission_is_graded_and_reported(graded):
    table, _, _ = _table(graded)
    row = table[("raises", "three_layers")]
    assert row["status"] == "graded-with-errors"
    assert "ValueError: boom in q3" in row["errors"]
    # q1 and q2 keep their points; q3 raised and q4 needs q3's results
    assert _scores(row) == {"q1": 2.0, "q2": 3.0, "q3": 0.0, "q4": 0.0}


def test_dead_kernel_does_not_stop_the_grader(graded):
    table, rows, _ = _table(graded)
    row = table[("crash", "two_layer_rates")]
    assert row["status"] in ("failed", "graded-with-errors")
    assert float(row["score"]) < 10 and row["errors"]
    # and the submissions graded after it are in the table
    assert table[("ref", "two_layer_rates")]["status"] == "graded"


def test_endless_submission_times_out(graded):
    table, _, _ = _table(graded)
    row = table[("looper", "three_layers")]
    assert row["status"] == "failed" and "timeout" in row["errors"]
    assert float(row["score"]) == 0


def test_empty_and_missing_are_reported(graded):
    table, rows, stdout = _table(graded)
    assert table[("empty", "two_layer_rates")]["status"] == "empty"            # 0 bytes
    assert table[("empty", "three_layers")]["status"] == "empty"               # no cells
    assert table[("empty", "deep_unimodal")]["status"] == "empty"              # unanswered
    assert table[("empty", "gd_vs_flow")]["status"] == "failed"                # not a notebook
    assert "not a notebook" in table[("empty", "gd_vs_flow")]["errors"]
    for name in NAMES:                                   # a roster name with no folder
        assert table[("ghost", name)]["status"] == "missing"
    assert table[("wrong", "three_layers")]["status"] == "missing"
    assert table[("wrong", "two_layer_rates")]["status"] == "missing"
    assert table[("zeroed", "gd_vs_flow")]["status"] == "missing"
    for key, row in table.items():
        if row["status"] in ("empty", "missing", "failed"):
            assert float(row["score"]) == 0 and float(row["possible"]) == 10, key
    # one row per (student, assignment)
    students = {"ref", "wrong", "raises", "crash", "empty", "ghost", "zeroed", "gamed", "banned"}
    main = [r for r in rows if r["student"] != "looper"]
    assert {r["student"] for r in main} == students and len(main) == len(students) * len(NAMES)
    assert "missing" in stdout


# gamed submissions and the points each keeps (all of them pass the public tests they reach)
GAMED = {
    # zeroed weights: the hidden tests rebuild the problem data, so answers computed from the
    # zeroed data are wrong (three_layers q2 asks for a function, tested on its own matrices)
    ("zeroed", "two_layer_rates"): {"q1": 0, "q2": 0, "q3": 0, "q4": 0},
    ("zeroed", "three_layers"): {"q1": 0, "q2": 3, "q3": 0, "q4": 0},
    # gd_vs_flow: a prediction that returns the measured change, a drift of 0 and an order of
    # 1; the hidden tests check the formula on other inputs, the measured drift and the fitted
    # slope (q4 is the key's answer)
    ("gamed", "gd_vs_flow"): {"q1": 0, "q2": 0, "q3": 0, "q4": 2},
}


@pytest.mark.parametrize("key", list(GAMED), ids="-".join)
def test_gamed_submissions_lose_their_points(graded, key):
    table, _, _ = _table(graded)
    row = table[key]
    assert row["status"] == "graded", (row["status"], row["errors"])
    assert _scores(row) == {q: float(p) for q, p in GAMED[key].items()}


@pytest.mark.parametrize("name", ["two_layer_rates", "three_layers"])
def test_banned_call_fails_in_the_notebook_with_its_reason(graded, name):
    table, _, _ = _table(graded)
    row = table[("banned", name)]
    assert row["status"] == "graded-with-errors"
    assert "ImportError: linflow.bounds is not available in this assignment" in row["errors"]
    # the answers the cell computed before the banned call are still the student's own
    assert _scores(row) == {q: float(p) for q, p in POINTS[name].items()}


def test_rows_give_their_seed_and_a_regrade_reproduces_them(graded, built, tmp_path):
    table, rows, _ = _table(graded)
    seeds = {r["seed"] for r in rows if r["status"] in ("graded", "graded-with-errors")}
    assert all(s.isdigit() for s in seeds) and len(seeds) > 5   # one fresh seed per submission
    out, _ = built
    row = table[("wrong", "deep_unimodal")]
    cmd = [sys.executable, str(ROOT / "tools" / "grade.py"), str(Path(row["file"]).parent),
           "--out", str(tmp_path / "again.csv"), "--assignments", "deep_unimodal",
           "--autograders", str(out), "--seed", row["seed"]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with (tmp_path / "again.csv").open() as fh:
        again = next(csv.DictReader(fh))
    assert again["seed"] == row["seed"] and _scores(again) == _scores(row)


def test_student_notebooks_start_with_the_install_cell(built):
    import publish

    _, dirs = built
    site = publish.site()
    for name in NAMES:
        nb = json.loads((dirs[name] / "student" / f"{name}.ipynb").read_text())
        code = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                for c in nb["cells"] if c["cell_type"] == "code"]
        first = code[0]
        if site.baseurl:
            assert f'site = "{site.baseurl}"' in first and "{site}_static/wheels/" + site.wheel_name in first, name
        else:    # no site to fetch from: the cell says how to install from the clone
            assert "pip install -e ." in first and "pip install otter-grader" in first, name
        assert "otter-grader" in first and "needed = (\"linflow\", \"otter\")" in first, name
        assert "import otter" in code[1], name     # before otter's init cell
