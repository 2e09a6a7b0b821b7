"""linflow.sweep's results store: one writer under any name, settings in one normal form, one reading
rule, fingerprints of what build made, settings checked before anything runs, read-only media."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import linflow as lf
from linflow import sweep
from linflow.sweep import lock as sweep_lock

Y = np.array([[1.0, 0.5], [0.0, 2.0]])


def build(p):
    rng = np.random.default_rng(p["seed"])
    return tuple(rng.normal(0.0, p.get("scale", 0.5), s) for s in ((2, 3), (3, 2))), lf.losses.Squared(Y)


def counted(calls, b=build):
    def f(p):
        calls.append(p["seed"])
        return b(p)
    return f


PTS = sweep.grid(seed=range(6))


# --- the lock -------------------------------------------------------------------------------

def test_lock_file_symlink_is_refused_not_followed(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    path = tmp_path / "rows.jsonl"
    os.symlink(victim, str(path) + ".lock")
    calls = []
    with pytest.raises(sweep.SweepLocked, match="is a symbolic link"):
        sweep.run(PTS, counted(calls), t_end=0.2, path=str(path))
    assert victim.read_text() == "keep me" and calls == [] and not path.exists()
    assert os.path.islink(str(path) + ".lock")  # left as it was
    # a dangling link is refused too (O_CREAT would otherwise create its target)
    os.remove(str(path) + ".lock")
    os.symlink(tmp_path / "nowhere", str(path) + ".lock")
    with pytest.raises(sweep.SweepLocked, match="symbolic link"):
        sweep.run(PTS, build, t_end=0.2, path=str(path))
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_link_to_the_store_contends_for_the_same_lock(tmp_path, suffix):
    path = tmp_path / f"rows{suffix}"
    link = tmp_path / f"alias{suffix}"
    sweep.run(PTS[:1], build, t_end=0.2, path=str(path))  # the store exists, so the link resolves
    os.symlink(path, link)
    assert sweep_lock.lock_path(str(link)) == sweep_lock.lock_path(str(path))
    seen = {}

    def second_writer(point, Ws0, traj):
        with pytest.raises(sweep.SweepLocked, match="another sweep is writing") as err:
            sweep.run([{"seed": 9}], build, t_end=0.2, path=str(link))
        seen["msg"] = str(err.value)
        return {}

    sweep.run(PTS[1:3], build, t_end=0.2, path=str(path), measure=second_writer)
    assert f"pid {os.getpid()}" in seen["msg"]
    assert len(sweep.read_rows(str(link))) == 3  # the link reads the same store


# --- settings in one normal form -------------------------------------------------------------

def test_default_settings_passed_explicitly_give_the_same_keys(tmp_path):
    path = str(tmp_path / "rows.jsonl")
    plain = sweep.run(PTS, build, t_end=0.5, path=path)
    calls, ran = [], []
    explicit = sweep.run(PTS, counted(calls), t_end=0.5, path=path, rtol=1e-8, atol=1e-10, method="DOPRI5",
                         max_steps=100_000, save=("loss",), diagnostics=(), check_every=8, loss_tol=None,
                         measure=lambda p, W, t: ran.append(p) or {})
    assert ran == [] and [r["key"] for r in explicit] == [r["key"] for r in plain]
    assert len(sweep.read_rows(path)) == 6
    # an int where a float is meant is the same setting too; a different value is not
    assert [r["key"] for r in sweep.run(PTS, build, t_end=0.5, atol=0)] != [r["key"] for r in plain]
    assert ([r["key"] for r in sweep.run(PTS[:2], build, t_end=0.5, atol=0)]
            == [r["key"] for r in sweep.run(PTS[:2], build, t_end=0.5, atol=0.0)])
    assert [r["key"] for r in sweep.run(PTS, build, t_end=0.5, rtol=1e-7)] != [r["key"] for r in plain]


def test_settings_are_checked_before_anything_runs(tmp_path):
    path = tmp_path / "rows.jsonl"
    calls = []
    for bad, err, pattern in (({"rtol": -1}, ValueError, "rtol must be positive"),
                              ({"atol": float("nan")}, ValueError, "atol must be non-negative"),
                              ({"method": "euler"}, ValueError, "unknown method 'euler'"),
                              ({"t_eval": [0.0, 2.0]}, ValueError, r"t_eval must lie in \[0, t_end"),
                              ({"max_steps": 0}, ValueError, "max_steps must be a positive integer"),
                              ({"diagnostics": ["nope"]}, ValueError, "unknown diagnostic 'nope'"),
                              ({"method": "midpoint", "dt": 1e-6}, ValueError, "needs at least"),
                              ({"rtl": 1e-6}, TypeError, "unknown keyword 'rtl'")):
        with pytest.raises(err, match=pattern):
            sweep.run(PTS, counted(calls), t_end=1.0, path=str(path), **bad)
    with pytest.raises(ValueError, match="t_end must be positive"):
        sweep.run(PTS, counted(calls), t_end=-1.0, path=str(path))
    assert calls == [] and not path.exists()
    # the corrected run is not refused: nothing was saved by the bad one
    assert all(r["ok"] for r in sweep.run(PTS, build, t_end=1.0, path=str(path), rtol=1e-6))


# --- one reading rule ------------------------------------------------------------------------

def test_first_row_of_a_key_wins_and_malformed_lines_are_counted_and_kept(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = sweep.run(PTS, build, t_end=0.5, path=str(path))
    forged = dict(rows[2], loss_final=123.0)  # a well-formed row with a key already there
    with open(path, "ab") as fh:
        fh.write(b'{"key": "torn", "seed": 9\n')         # not JSON
        fh.write(b"[1, 2, 3]\n")                         # JSON, not an object
        fh.write(b'"a string"\n')                        # JSON, not an object
        fh.write(b'{"seed": "\xff\xfe"}\n')              # not UTF-8
        fh.write(b'{"key": "k", "seed": 1}\n')           # no ok, no status
        fh.write(b'{"key": 7, "ok": true, "status": "done"}\n')  # key not a string
        fh.write((json.dumps(forged) + "\n").encode())
    before = path.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = sweep.read_rows(str(path))
    mine = [w for w in caught if issubclass(w.category, sweep.MalformedRowsWarning)]
    assert len(mine) == 1, [str(w.message) for w in caught]
    assert "6 malformed entries" in str(mine[0].message) and "1 later row of keys already read" in str(mine[0].message)
    assert [r["key"] for r in got] == [r["key"] for r in rows]
    assert got[2]["loss_final"] == rows[2]["loss_final"] != 123.0  # the first row of the key
    # a resume reads the same way, runs nothing, and leaves the lines in the file
    calls = []
    with pytest.warns(sweep.MalformedRowsWarning):
        again = sweep.run(PTS, counted(calls), t_end=0.5, path=str(path), verify=False)
    assert calls == [] and again[2]["loss_final"] == rows[2]["loss_final"]
    assert path.read_bytes() == before


# --- fingerprints of what build made --------------------------------------------------------------

def test_rows_store_a_fingerprint_of_the_network():
    rows = sweep.run(PTS[:2], build, t_end=0.2)
    Ws, loss = build(PTS[0])
    fp = rows[0]["fingerprint"]
    assert fp.startswith("float64 2x3 3x2 Squared weights:") and fp != rows[1]["fingerprint"]
    assert fp == sweep.batch.fingerprint(tuple(W.copy() for W in Ws), lf.losses.Squared(Y.copy()))
    assert fp != sweep.batch.fingerprint(Ws, lf.losses.Squared(2 * Y))  # the loss data count
    assert fp != sweep.batch.fingerprint(tuple(W.astype(np.float32) for W in Ws), loss)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_resume_with_a_changed_build_is_refused(tmp_path, suffix):
    path = tmp_path / f"rows{suffix}"
    sweep.run(PTS[:4], build, t_end=0.2, path=str(path))

    def rescaled(p):
        return build(dict(p, scale=0.6))

    def other_target(p):
        Ws, _ = build(p)
        return Ws, lf.losses.Squared(Y + 1.0)

    for changed in (rescaled, other_target):
        with pytest.raises(ValueError, match=r"build makes another network for the point \{'seed': 0\}"):
            sweep.run(PTS, changed, t_end=0.2, path=str(path))
    # only one point changed: found when every stored point is checked
    def one_changed(p):
        return rescaled(p) if p["seed"] == 2 else build(p)

    with pytest.raises(ValueError, match=r"\{'seed': 2\}"):
        sweep.run(PTS, one_changed, t_end=0.2, path=str(path), verify=True)
    assert len(sweep.read_rows(str(path))) == 4  # nothing written
    rows = sweep.run(PTS, build, t_end=0.2, path=str(path))  # the same build resumes
    assert len(rows) == 6 and all(r["ok"] for r in rows)


# --- paths and read-only media ----------------------------------------------------------------

def test_bad_paths_get_clear_errors(tmp_path):
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(ValueError, match="is a folder; a JSON Lines store is one file"):
        sweep.run(PTS, build, t_end=0.2, path=str(tmp_path / "folder.jsonl"))
    (tmp_path / "file.parquet").write_text("")
    with pytest.raises(ValueError, match="is a file; a Parquet store is a folder"):
        sweep.run(PTS, build, t_end=0.2, path=str(tmp_path / "file.parquet"))
    (tmp_path / "plain").write_text("")
    with pytest.raises(ValueError, match="cannot create the folder .*plain"):
        sweep.run(PTS, build, t_end=0.2, path=str(tmp_path / "plain" / "sub" / "rows.jsonl"))
    with pytest.raises(ValueError, match="format must be one of"):
        sweep.run(PTS, build, t_end=0.2, path=str(tmp_path / "r.jsonl"), format="csv")
    with pytest.raises(ValueError, match="is a folder"):
        sweep.read_rows(str(tmp_path / "folder.jsonl"))
    with pytest.raises(TypeError, match="verify must be True, False or a number"):
        sweep.run(PTS, build, t_end=0.2, verify="all")
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_read_only_store_is_read_and_resumed_without_writing(tmp_path, monkeypatch, suffix):
    """The lock cannot be created (EROFS, as on read-only media): a finished sweep is still read back."""
    path = str(tmp_path / f"rows{suffix}")
    rows = sweep.run(PTS, build, t_end=0.3, path=path)
    real_open = os.open

    def read_only(name, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", name)
        return real_open(name, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    monkeypatch.setattr("builtins.open", _read_only_builtin_open(open))
    calls = []
    again = sweep.run(PTS, counted(calls), t_end=0.3, path=path)
    assert [r["loss_final"] for r in again] == [r["loss_final"] for r in rows]
    assert not os.path.exists(sweep_lock.lock_path(path))
    with pytest.raises(PermissionError, match="1 point.* not in .* cannot be written"):
        sweep.run(PTS + [{"seed": 99}], build, t_end=0.3, path=path)
    assert sweep.read_frame(path).shape[0] == 6


def _read_only_builtin_open(real):
    def opener(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            raise OSError(errno.EROFS, "Read-only file system", file)
        return real(file, mode, *a, **k)
    return opener


RO_SCRIPT = """
import sys, numpy as np, linflow as lf
sys.path.insert(0, {tests!r})
from test_sweep_store import build, PTS
path = {path!r}
rows = lf.sweep.run(PTS, build, t_end=0.3, path=path)
assert len(rows) == 6 and all(r["ok"] for r in rows), rows
assert len(lf.sweep.read_rows(path)) == 6 and lf.sweep.read_frame(path).shape[0] == 6
try:
    lf.sweep.run(PTS + [{{"seed": 99}}], build, t_end=0.3, path=path)
except PermissionError as exc:
    print("refused:", exc)
open(path + ".probe", "w")  # must fail: the mount is read-only
"""


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_read_only_mount_for_real(tmp_path, suffix):
    """The same on a real read-only bind mount (a user and mount namespace: unshare -rm)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("no unshare -rm here to mount a folder read-only")
    d = tmp_path / "media"
    d.mkdir()
    path = str(d / f"rows{suffix}")
    sweep.run(PTS, build, t_end=0.3, path=path)
    listing = sorted(os.listdir(d))
    script = tmp_path / "ro.py"
    script.write_text(RO_SCRIPT.format(tests=os.path.dirname(__file__), path=path))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(lf.__file__)),
                                                      os.environ.get("PYTHONPATH", "")]))
    cmd = f"mount --bind {d} {d} && mount -o remount,ro,bind {d} && exec {sys.executable} {script}"
    out = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, env=env,
                         timeout=120)
    assert "Read-only file system" in out.stderr and out.stderr.rstrip().splitlines()[-1].startswith("OSError")
    assert "refused: linflow: 1 point(s)" in out.stdout, out.stdout + out.stderr
    assert sorted(os.listdir(d)) == listing


def test_the_package_has_no_import_cycle_with_linflow_distributed():
    """linflow.distributed is an alias of linflow.sweep.cluster; nothing in linflow/sweep imports it back."""
    import ast
    import pathlib

    pkg = pathlib.Path(sweep.__file__).parent
    for f in pkg.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "distributed" not in (node.module or "") or node.level == 0, (f.name, node.module)
                assert not (node.level == 2 and node.module is None
                            and any(a.name == "distributed" for a in node.names)), f.name
    code = ("import linflow.distributed as d, linflow.sweep.cluster as c, sys\n"
            "assert d.sweep_time is c.sweep_time and d.local_client is c.local_client\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'pandas', 'pyarrow')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(lf.__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"  # Dask, pandas and pyarrow load only when used
