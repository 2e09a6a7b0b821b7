"""Submissions that try to score without solving, graded for real by tools/grade.py.

Every gamed submission is an assignment's key (the master's solutions) with one code cell
added before each ``grader.check`` cell and at the end. Most of those cells first replace the graded answers by wrong
ones (``_junk``: each value plus one, each function's output plus one), then try to make the
grader accept them: rewriting the test files, replacing ``np.allclose``, objects whose
comparisons always succeed, ``ndarray`` subclasses, object arrays, printing a fake result,
forging the grader's reply, reading the hidden tests, reaching the network, killing the
grader. Others compute the answers with ``lf.bounds`` where the assignment bans it (by a
computed attribute name, importlib, ``__import__``, a cleared cell history, the import hook
removed, its source file loaded), or type in the numbers printed by a run of the solution
(with the seed the student notebook ships). And three never end, exhaust the memory, or
kill their own process.

Each one must score no more than an empty submission (0 points) on every question it games,
and the honest keys must score full marks; the gamed rows' scores are printed as a table.
(``python3 tests/test_grading_gamed.py BUILD_DIR OUT_DIR`` writes the same submissions for
any build of the assignments, e.g. to grade them with an older grader.)
"""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

NAMES = ["deep_unimodal", "gd_vs_flow", "three_layers", "two_layer_rates"]
QUESTIONS = ["q1", "q2", "q3", "q4"]

# answers computed with lf.bounds (B), and the questions they game, per assignment
BOUNDS_CODE = {
    "two_layer_rates": ("""
delta_plus, delta_minus, gap = (float(v) for v in B.spread_gap(Ws))
nu = float(B.margin(Ws, loss))
alpha2 = float(B.two_layer(Ws, loss))
rate = loss.gamma * alpha2
""", ["q2", "q4"]),
    "three_layers": ("""
wedge = lambda P, Q, r: np.asarray(B.wedge(P, Q, r))
_d = B.deltas(Ws)
Delta_21, Delta_21_2, Delta_23, Delta_23_2 = (float(_d[k]) for k in ("Delta_21", "Delta_21_2", "Delta_23", "Delta_23_2"))
delta_star = float(B.delta_star(Ws))
""", ["q2", "q3", "q4"]),
    "deep_unimodal": ("""
l_star = int(B.unimodal_index(Ws))
d_tilde = np.asarray(B.cumulative_imbalance(Ws))
bound = float(B.unimodal(Ws))
depth_bound = lambda eps, L: float(B.unimodal(lf.init.unimodal((2,) * (L + 1), L, [eps] * (L - 1), seed=0)))
""", ["q1", "q2", "q3", "q4"]),
}
BOUNDS_NAMES = {"two_layer_rates": ["delta_plus", "delta_minus", "gap", "nu", "alpha2", "rate"],
                "three_layers": ["wedge", "Delta_21", "Delta_21_2", "Delta_23", "Delta_23_2", "delta_star"],
                "deep_unimodal": ["l_star", "d_tilde", "bound", "depth_bound"]}

JUNK = '''
def _junk(x):
    if isinstance(x, (list, tuple)):
        return type(x)(_junk(v) for v in x)
    if callable(x):
        return lambda *a, _f=x, **k: _junk(_f(*a, **k))
    try:
        return x + 1
    except Exception:
        return x
for _n in ANSWER_NAMES:
    if _n in globals():
        globals()[_n] = _junk(globals()[_n])
'''

ALWAYS_EQUAL = '''
class AlwaysEqual:
    def __eq__(self, other): return True
    __ne__ = lambda self, other: False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __float__(self): return 0.0
    def __len__(self): return 5
    def __getitem__(self, i):
        if isinstance(i, int) and i >= 5: raise IndexError(i)
        return self
    def __abs__(self): return self
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = lambda self, o: self
    def __bool__(self): return True
    def __call__(self, *a, **k): return self
    __hash__ = object.__hash__
'''

# the key's answers turned into something else; ANSWER_NAMES is filled in per assignment
ATTACKS = {
    # rewrite every test file the notebook can find so that each test passes
    "rewrite_tests": JUNK + '''
import os, re
# (the notebook's folder, where otter keeps its tests, and the grader's build of the
# assignments; never the folders above, which other programs share)
for _top in [os.getcwd(), "/autograder", *GRADER_PATHS[1:]]:
    for _dir, _subs, _files in os.walk(_top):
        for _f in _files:
            if re.fullmatch(r"q\\d+\\.py", _f):
                _p = os.path.join(_dir, _f)
                try:
                    _src = open(_p).read()
                    _keep = "\\n".join(l for l in _src.splitlines() if re.match(r"(name|points|all_or_nothing|OK_FORMAT) =", l))
                    open(_p, "w").write("from otter.test_files import test_case\\n" + _keep + "\\n@test_case(points=None, hidden=False)\\ndef test_ok():\\n    pass\\n")
                except OSError:
                    pass
''',
    # numpy's comparisons replaced by ones that always succeed
    "allclose": JUNK + '''
import numpy
numpy.allclose = numpy.isclose = lambda *a, **k: True
numpy.array_equal = numpy.testing.assert_allclose = lambda *a, **k: True
np.allclose = np.isclose = numpy.allclose
''',
    # answers whose comparisons always succeed
    "always_equal": ALWAYS_EQUAL + '''
for _n in ANSWER_NAMES:
    globals()[_n] = (lambda *a, **k: AlwaysEqual()) if callable(globals().get(_n)) else AlwaysEqual()
''',
    # wrong values in an ndarray subclass whose comparisons always succeed
    "ndarray_subclass": JUNK + '''
class Sneaky(np.ndarray):
    def __eq__(self, o): return np.ones(np.shape(self), bool).view(np.ndarray)
    __le__ = __ge__ = __lt__ = __gt__ = __eq__
    def __array_wrap__(self, obj, context=None, return_scalar=False): return obj.view(Sneaky)
def _sneak(x):
    if isinstance(x, (list, tuple)): return type(x)(_sneak(v) for v in x)
    if callable(x): return lambda *a, _f=x, **k: _sneak(_f(*a, **k))
    try: return np.asarray(x, dtype=float).view(Sneaky)
    except Exception: return x
for _n in ANSWER_NAMES:
    if _n in globals(): globals()[_n] = _sneak(globals()[_n])
''',
    # object arrays of always-equal objects
    "object_array": ALWAYS_EQUAL + '''
for _n in ANSWER_NAMES:
    _a = np.empty(5, dtype=object)
    _a[:] = [AlwaysEqual() for _ in range(5)]
    globals()[_n] = (lambda *a, _a=_a, **k: _a) if callable(globals().get(_n)) else _a
''',
    # a fake grading result and otter-like output on stdout
    "fake_output": JUNK + '''
import json
print("@@GRADE-RESULT@@" + json.dumps({"questions": {q: {"score": 10.0, "possible": 10.0} for q in ("q1", "q2", "q3", "q4")}, "errors": [], "catastrophic": None, "total": 10.0, "possible": 10.0}))
print("q1 results: All test cases passed!\\nq2 results: All test cases passed!")
''',
    # a reply in the grader's own format, written to every file descriptor that takes it
    "forged_reply": JUNK + '''
import os
_msg = ('{"answers":{' + ",".join('"%s":{"value":["float","0x1.0p+0"]}' % _n.encode().hex() for _n in ANSWER_NAMES) + '},"errors":[]}\\n').encode()
for _fd in range(3, 64):
    try: os.write(_fd, _msg)
    except OSError: pass
''',
    # look for the hidden tests and the autograder (raise if any is readable)
    "read_hidden": JUNK + '''
import os, glob
_root = GRADER_PATHS[0]
_pats = [os.path.join(os.getcwd(), "**", "q*.py"), os.path.join(os.path.dirname(os.getcwd()), "*", "tests", "q*.py"),
         "/tmp/*/tests/q*.py", "/tmp/*/*/autograder/*.zip", "/tmp/*/*/*/autograder/*.zip", "/autograder/**/q*.py",
         os.path.join(_root, "tests", "*.py"), os.path.join(_root, "assignments", "*.md"),
         os.path.join(_root, "_build", "assignments", "*", "autograder", "*.zip")]
_pats += [os.path.join(p, "**", "autograder", "*.zip") for p in GRADER_PATHS[1:]]
_found = []
for _pat in _pats:
    for _p in glob.glob(_pat, recursive=True):
        try:
            open(_p, "rb").read(10)
            _found.append(_p)
        except OSError:
            pass
if _found:
    raise RuntimeError("FOUND-HIDDEN " + _found[0])
''',
    # the network (a TCP server of the test process on the loopback): raise if reached
    "network": JUNK + '''
import socket
try:
    socket.create_connection(("127.0.0.1", NET_PORT), timeout=2).close()
    raise RuntimeError("NETWORK-REACHED")
except OSError:
    pass
''',
    # the grading process killed from inside
    "kill_parent": JUNK + '''
import os, signal
for _pid in (os.getppid(), 0):
    try: os.kill(_pid, signal.SIGKILL)
    except (OSError, PermissionError): pass
''',
}
BOUNDS_ACCESS = {
    "bounds_attr": 'B = getattr(lf, "bou" + "nds")',
    "bounds_importlib": 'import importlib\nB = importlib.import_module("linflow." + "bou" + "nds")',
    "bounds_dunder": 'B = __import__("linflow.bounds", fromlist=["x"])',
    "bounds_history": 'try:\n    del In[:]\nexcept NameError:\n    pass\nimport linflow.bounds as B',
    "bounds_hook_removed": '''import sys
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__ not in ("__main__",) and "Bann" not in type(f).__name__]
for _m in [m for m in sys.modules if m.startswith("linflow.bounds")]:
    del sys.modules[_m]
import linflow.bounds as B''',
    # the real package's source, found through the install's metadata or the known checkout,
    # loaded with importlib.util, runpy, or exec
    "bounds_file": '''import importlib.util, json, os, runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "Bann" not in type(f).__name__]
_roots = list(GRADER_PATHS)
try:
    from importlib.metadata import distribution
    _roots.append(json.loads(distribution("linflow").read_text("direct_url.json"))["url"][7:])
except Exception:
    pass
B = None
for _r in _roots:
    _init = os.path.join(_r, "linflow", "bounds", "__init__.py")
    try:
        _src = open(_init).read()
    except OSError:
        continue
    if not _src.strip() or "not available" in _src:
        continue
    for _m in [m for m in sys.modules if m.startswith("linflow.bounds")]:
        del sys.modules[_m]
    try:
        _spec = importlib.util.spec_from_file_location("linflow.bounds", _init, submodule_search_locations=[os.path.dirname(_init)])
        B = importlib.util.module_from_spec(_spec)
        sys.modules["linflow.bounds"] = B
        _spec.loader.exec_module(B)
        break
    except Exception:
        B = None
    try:
        B = types.SimpleNamespace(**runpy.run_path(_init, run_name="linflow.bounds"))
        break
    except Exception:
        B = None
    try:
        _ns = {"__name__": "linflow.bounds", "__package__": "linflow.bounds", "__path__": [os.path.dirname(_init)]}
        exec(compile(_src, _init, "exec"), _ns)
        B = types.SimpleNamespace(**_ns)
        break
    except Exception:
        B = None
if B is None:
    raise ImportError("no readable copy of linflow.bounds")''',
}


def answer_names(zip_path: Path) -> list[str]:
    from grading.phase2 import load_questions

    qs = load_questions(zip_path)
    return sorted({p for q in qs.values() for t in q.tests for p in t.params} - {"seed", "In"})


def solution_values(key: dict, names: list[str]) -> dict:
    """The key's answers from a run in this process, with the seed the notebook ships."""
    from grading.phase2 import code_cells

    fake = types.ModuleType("otter")
    fake.Notebook = lambda *a, **k: types.SimpleNamespace(check=lambda *a: None, check_all=lambda: None)
    saved = sys.modules.get("otter")
    sys.modules["otter"] = fake
    try:
        ns = {"__name__": "__main__"}
        for _, src in code_cells(key, None):
            if src.lstrip().startswith(("%", "!")):
                continue
            exec(compile(src, "<key>", "exec"), ns)
    finally:
        if saved is not None:
            sys.modules["otter"] = saved
        else:
            del sys.modules["otter"]
    return {n: ns[n] for n in names if n in ns and not callable(ns[n])}


def literal(x) -> str:
    import numpy as np

    if isinstance(x, (list, tuple)):
        inner = ", ".join(literal(v) for v in x)
        return f"[{inner}]" if isinstance(x, list) else f"({inner},)"
    if isinstance(x, np.ndarray):
        return f"np.array({x.tolist()!r})"
    if isinstance(x, (bool, np.bool_)):
        return repr(bool(x))
    if isinstance(x, (int, np.integer)):
        return repr(int(x))
    return repr(float(x))


def gamed_cells(name: str, key: dict, zip_path: Path, grader_paths: list[str], net_port: int):
    """{kind: (code of the appended cell, the questions it games)} for one assignment."""
    names = answer_names(zip_path)
    head = (f"import types\nANSWER_NAMES = {names!r}\nGRADER_PATHS = {grader_paths!r}\n"
            f"NET_PORT = {net_port}\n")
    out = {k: (head + code, QUESTIONS) for k, code in ATTACKS.items()}
    if name in BOUNDS_CODE:
        code, qs = BOUNDS_CODE[name]
        junk = head.replace(f"ANSWER_NAMES = {names!r}", f"ANSWER_NAMES = {BOUNDS_NAMES[name]!r}") + JUNK
        for kind, access in BOUNDS_ACCESS.items():
            out[kind] = (junk + access + "\n" + code, qs)
    values = solution_values(key, names)
    hard = "\n".join(f"{n} = {literal(v)}" for n, v in values.items())
    qs = questions_of(zip_path, set(values))
    out["hardcoded"] = (head + hard, qs)
    return out


def questions_of(zip_path: Path, names: set[str]) -> list[str]:
    """The questions whose tests read one of NAMES."""
    from grading.phase2 import load_questions

    return sorted(q.name for q in load_questions(zip_path).values()
                  if any(set(t.params) & names for t in q.tests))


def append_cell(nb: dict, code: str) -> dict:
    """NB with the cell CODE before every ``grader.check`` cell and at the end: so the gamed
    values are the ones both a grader that checks as the notebook runs (otter) and one that
    reads the final values (tools/grade.py) see."""
    nb = json.loads(json.dumps(nb))
    cells = []
    for i, c in enumerate(nb["cells"] + [None]):
        src = "" if c is None else "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c is None or (c["cell_type"] == "code" and src.startswith("grader.check(")):
            cells.append({"cell_type": "code", "execution_count": None, "id": f"gamed-{i}",
                          "metadata": {}, "outputs": [], "source": code})
        if c is not None:
            cells.append(c)
    nb["cells"] = cells
    return nb


def write_gamed(build: Path, out: Path, grader_paths: list[str], net_port: int) -> dict:
    """Write every gamed submission of the assignments built in BUILD (one folder per kind)
    into OUT; returns {(kind, assignment): gamed questions}."""
    import assign

    gamed = {}
    for name in NAMES:
        key = json.loads((build / name / "autograder" / f"{name}.ipynb").read_text())
        zip_path = assign.autograder_zip(build / name)
        for kind, (code, qs) in gamed_cells(name, key, zip_path, grader_paths, net_port).items():
            d = out / kind
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{name}.ipynb").write_text(json.dumps(append_cell(key, code)))
            gamed[(kind, name)] = qs
    # the grader's limits: no end, all the memory, a dead process (in one assignment each)
    key = json.loads((build / "three_layers" / "autograder" / "three_layers.ipynb").read_text())
    for kind, code in [("endless", "while True:\n    pass"),
                       ("memory_bomb", "_hog = []\nwhile True:\n    _hog.append(bytearray(1 << 26))"),
                       ("exit", "import os\nos._exit(0)")]:
        d = out / kind
        d.mkdir(parents=True, exist_ok=True)
        (d / "three_layers.ipynb").write_text(json.dumps(append_cell(key, JUNK.replace(
            "ANSWER_NAMES", repr(answer_names(assign.autograder_zip(build / "three_layers")))) + code)))
        gamed[(kind, "three_layers")] = QUESTIONS
    return gamed


# ----------------------------------------------------------------------------- the tests
pytest.importorskip("otter", reason="otter-grader is in the test extras: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    import assign
    from support import shared_once

    build = Path(shared_once(tmp_path_factory, "assignments",
                             lambda out: {n: str(d) for n, d in assign.build_all(out=out).items()})
                 ["two_layer_rates"]).parent
    folder = tmp_path_factory.mktemp("gamed")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    threading.Thread(target=lambda: [server.accept() for _ in range(100)], daemon=True).start()
    subs = folder / "submissions"
    gamed = write_gamed(build, subs, [str(ROOT), str(build)], port)
    for name in NAMES:   # the honest keys, graded in the same run
        d = subs / "honest"
        d.mkdir(exist_ok=True)
        (d / f"{name}.ipynb").write_text((build / name / "autograder" / f"{name}.ipynb").read_text())
    csv_path = folder / "scores.csv"
    cmd = [sys.executable, str(ROOT / "tools" / "grade.py"), str(subs), "--out", str(csv_path),
           "--autograders", str(build), "--jobs", "2", "--timeout", "60", "--memory", "2048"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    server.close()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with csv_path.open() as fh:
        rows = {(row["student"], row["assignment"]): row for row in csv.DictReader(fh)}
    table = ["kind                  " + "  ".join(f"{n:>16}" for n in NAMES)]
    for kind in sorted({k for k, _ in gamed} | {"honest"}):
        cells = [f"{float(rows[(kind, n)]['score']):>16g}" if (kind, n) in rows
                 and rows[(kind, n)]["status"] != "missing" else f"{'-':>16}" for n in NAMES]
        table.append(f"{kind:<22}" + "  ".join(cells))
    print("\n".join(table))
    return rows, gamed


def test_honest_keys_score_full_marks(graded):
    rows, _ = graded
    for name in NAMES:
        row = rows[("honest", name)]
        assert row["status"] == "graded", (row["status"], row["errors"], row["failures"])
        assert float(row["score"]) == float(row["possible"]) == 10, row["failures"]


def _gamed_keys():
    keys = [(k, n) for k in list(ATTACKS) + ["hardcoded"] for n in NAMES]
    keys += [(k, n) for k in BOUNDS_ACCESS for n in BOUNDS_CODE]
    keys += [(k, "three_layers") for k in ("endless", "memory_bomb", "exit")]
    return keys


# stopped only by the isolation of a root grader (namespaces, nobody, hidden folders)
NEEDS_ISOLATION = {"read_hidden", "network", "bounds_file", "rewrite_tests"}


def _isolated() -> bool:
    from grading.sandbox import isolation_available

    return isolation_available()


@pytest.mark.parametrize("key", _gamed_keys(), ids="-".join)
def test_gamed_submission_scores_no_more_than_an_empty_one(graded, key):
    if key[0] in NEEDS_ISOLATION and not _isolated():
        pytest.skip("without root, unshare and setpriv the grader runs with limits only, which "
                    "does not stop this attack (the instructor page says so)")
    rows, gamed = graded
    row = rows[key]
    assert row["status"] != "missing"
    for q in gamed[key]:   # an empty submission scores 0 on every question
        assert float(row[q]) == 0.0, (q, row["errors"], row["failures"])


def test_gamed_submissions_were_graded_and_say_why(graded):
    rows, gamed = graded
    # what the attacks reach inside phase 1 is reported, never a success
    for key in gamed:
        errors = rows[key]["errors"]
        assert rows[key]["isolation"] in ("namespaces, nobody", "limits only")
        if rows[key]["isolation"] == "namespaces, nobody":
            assert "FOUND-HIDDEN" not in errors and "NETWORK-REACHED" not in errors, (key, errors)
    # the ban says what is banned
    for name in BOUNDS_CODE:
        assert "linflow.bounds is not available in this assignment" in rows[("bounds_attr", name)]["errors"]
    # exact types: the reasons are in the table
    assert "only exact types" in rows[("ndarray_subclass", "two_layer_rates")]["errors"]
    assert "AlwaysEqual" in rows[("always_equal", "two_layer_rates")]["errors"]
    assert "dtype |O" in rows[("object_array", "two_layer_rates")]["errors"]
    assert rows[("endless", "three_layers")]["status"] == "failed"
    assert "timeout" in rows[("endless", "three_layers")]["errors"]
    assert "MemoryError" in rows[("memory_bomb", "three_layers")]["errors"]


if __name__ == "__main__":
    # python3 tests/test_grading_gamed.py BUILD_DIR OUT_DIR [PORT]: the gamed submissions of a build
    build, out = Path(sys.argv[1]), Path(sys.argv[2])
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 9
    for (kind, name), qs in write_gamed(build, out, [str(ROOT), str(build)], port).items():
        print(kind, name, ",".join(qs))
