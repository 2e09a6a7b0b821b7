"""Phase 2 of the grader: the checks, in a process that never runs the submission's code.

:func:`grade_submission` draws the grading seed, starts phase 1 (tools/grading/sandbox.py) on
the submission's code cells with the problem data's ``seed = N`` line set to that seed, asks
it for the graded answers as plain data, and runs every test of the assignment's autograder
zip (public and hidden, otter's test-file format) here, on the decoded values and on
``seed``, so that the hidden tests rebuild the same problem data. A function a test calls
(``predicted_change``, ``wedge``, ``depth_bound``) is a :class:`Remote`: each call sends the
test's inputs, drawn here after the submission's cells have run, to phase 1 and decodes
the output that comes back. Nothing the submission prints is read.
"""
from __future__ import annotations

import inspect
import json
import re
import secrets
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .child import NotPlain, decode, encode
from .sandbox import Phase1, Phase1Error

SEED_LINE = re.compile(r"^seed\s*=\s*\d+[ \t]*(#.*)?$", flags=re.M)
SEED_RANGE = 2 ** 31
NOT_ANSWERS = {"seed"}


@dataclass
class Test:
    name: str
    fn: object
    params: list[str]
    hidden: bool


@dataclass
class Question:
    name: str
    points: float
    all_or_nothing: bool
    tests: list[Test] = field(default_factory=list)


def load_questions(zip_path: Path) -> dict[str, Question]:
    """The questions of an otter autograder zip (its ``tests/*.py``, exception format)."""
    questions = {}
    with zipfile.ZipFile(zip_path) as z:
        for n in sorted(z.namelist()):
            if not (n.startswith("tests/") and n.endswith(".py")):
                continue
            found = []

            def test_case(points=None, hidden=False, **_):
                def deco(fn):
                    found.append((fn, hidden))
                    return fn
                return deco

            ns = {"test_case": test_case}
            src = z.read(n).decode().replace("from otter.test_files import test_case", "")
            exec(compile(src, n, "exec"), ns)
            q = Question(ns.get("name", Path(n).stem), float(ns.get("points", 1)),
                         bool(ns.get("all_or_nothing", False)))
            for fn, hidden in found:
                q.tests.append(Test(fn.__name__, fn, list(inspect.signature(fn).parameters), hidden))
            questions[q.name] = q
    return questions


def code_cells(nb: dict, seed: int | None) -> list[tuple[int, str]]:
    """(index, source) of the notebook's code cells; ``seed = N`` lines set to SEED."""
    out = []
    for i, c in enumerate(nb.get("cells", [])):
        if c.get("cell_type") != "code":
            continue
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        if seed is not None:
            src = SEED_LINE.sub(f"seed = {seed}  # drawn by the grader", src)
        out.append((i, src))
    return out


class Missing:
    """An answer that phase 1 did not export as plain data; using it fails with why."""

    def __init__(self, name, why):
        self.name, self.why = name, why

    def _fail(self, *a, **k):
        raise AssertionError(f"{self.name}: {self.why}")

    __call__ = __array__ = __float__ = __int__ = __len__ = __iter__ = __getitem__ = _fail
    __bool__ = __lt__ = __le__ = __gt__ = __ge__ = __add__ = __sub__ = __mul__ = _fail
    __truediv__ = __radd__ = __rsub__ = __rmul__ = __rtruediv__ = __neg__ = __abs__ = _fail

    def __eq__(self, other):
        self._fail()

    __ne__ = __eq__
    __hash__ = None


class Remote:
    """The submission's function NAME, called in phase 1 on this process's inputs."""

    def __init__(self, phase1: Phase1, name: str):
        self.phase1, self.name = phase1, name

    def __call__(self, *args):
        try:
            payload = [json.loads(encode(a)) for a in args]
        except NotPlain as e:   # the test's own inputs: a bug in the test, not the student's
            raise RuntimeError(f"the grader cannot send {e} to {self.name}")
        try:
            out = self.phase1.request({"op": "call", "name": self.name, "args": payload})
        except Phase1Error as e:
            raise AssertionError(f"{self.name}(...): {e}")
        if "error" in out:
            raise AssertionError(f"{self.name}(...) {_text(out['error'])}")
        try:
            return decode(out.get("value"))
        except NotPlain as e:
            raise AssertionError(f"{self.name}(...) returned {e}")

    def __array__(self, *a, **k):
        raise AssertionError(f"{self.name} is a function in the submission, not a value")

    __float__ = __len__ = __iter__ = __getitem__ = __array__


def _text(hexed) -> str:
    try:
        return bytes.fromhex(hexed).decode("utf-8", errors="replace")
    except (TypeError, ValueError):
        return "(unreadable message)"


def answers_env(reply: dict, phase1: Phase1) -> tuple[dict, list[str]]:
    """{name: plain value, Remote or Missing} and the cell errors, from the export reply."""
    env, notes = {}, []
    answers = reply.get("answers")
    if not isinstance(answers, dict):
        raise Phase1Error("its reply was not the grader's format")
    for key, item in answers.items():
        name = _text(key)
        if not isinstance(item, dict):
            env[name] = Missing(name, "not the grader's format")
        elif item.get("kind") == "function":
            env[name] = Remote(phase1, name)
        elif "value" in item:
            try:
                env[name] = decode(item["value"])
            except NotPlain as e:
                env[name] = Missing(name, f"is {e}")
        elif "not_plain" in item:
            why = _text(item["not_plain"])
            env[name] = Missing(name, f"is {why}")
            notes.append(f"{name} scores 0: it is {why}")
        else:
            env[name] = Missing(name, "is not defined")
    errors = [_text(e) for e in reply.get("errors", []) if isinstance(e, str)][:50]
    return env, errors + notes


def run_checks(questions: dict[str, Question], env: dict) -> tuple[dict, list[str]]:
    """{question: {score, possible}} and the failure messages."""
    results, failures = {}, []
    for q in questions.values():
        passed = 0
        for t in q.tests:
            kwargs = {p: env.get(p, Missing(p, "is not defined")) for p in t.params}
            try:
                t.fn(**kwargs)
                passed += 1
            except Exception as e:
                msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                failures.append(f"{q.name} {'hidden' if t.hidden else 'public'} {t.name}: {msg}")
        n = len(q.tests) or 1
        score = q.points if passed == n else (0.0 if q.all_or_nothing else q.points * passed / n)
        results[q.name] = {"score": float(score), "possible": q.points}
    return results, failures


def grade_submission(nb_path: Path, zip_path: Path, banned: list[str], hide: list[Path],
                     timeout: float, memory_mb: int, seed: int | None = None) -> dict:
    """Both phases for one notebook: {questions, errors, failures, seed, isolation, total,
    possible}; ``catastrophic`` says why phase 1 gave no answers at all."""
    nb = json.loads(Path(nb_path).read_text(errors="replace"))
    questions = load_questions(zip_path)
    seed = secrets.randbelow(SEED_RANGE) if seed is None else int(seed)
    names = sorted({p for q in questions.values() for t in q.tests for p in t.params} - NOT_ANSWERS)
    out = {"seed": seed, "errors": [], "failures": [], "catastrophic": None}
    with Phase1(code_cells(nb, seed), banned, hide, timeout, memory_mb) as p1:
        out["isolation"] = "namespaces, nobody" if p1.isolated else "limits only"
        try:
            reply = p1.request({"op": "export", "names": names})
            env, out["errors"] = answers_env(reply, p1)
        except Phase1Error as e:
            out["catastrophic"] = str(e)
            env = {}
        env["seed"] = seed
        results, out["failures"] = run_checks(questions, env)
    out["questions"] = results
    out["total"] = sum(r["score"] for r in results.values())
    out["possible"] = sum(r["possible"] for r in results.values())
    return out
