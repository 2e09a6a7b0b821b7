"""Phase 1's process: a scratch folder, limits, isolation, and the request/reply channel.

:class:`Phase1` starts tools/grading/child.py on a submission's code cells in a fresh scratch
folder that holds the cells, the child script and a copy of the ``linflow`` package (without
the banned modules' source: their folder is a stub that refuses to import), and nothing of
the autograder. The child runs

* under ``resource`` limits set before it starts: address space (``--memory``), CPU seconds,
  size of any file it writes, no core dumps;
* with a wall-clock limit (the grader ends the whole process group, and with it everything
  the submission started);
* where the grader runs as root on Linux with ``unshare`` and ``setpriv`` (a container, a
  grading VM): in new network, mount and PID namespaces (no network but an unconfigured
  loopback, no view of the grader's processes), with the grader's folders (autograders,
  masters, tests, tools, the submissions folder, the git store, and the real ``bounds``
  folder of every ``linflow`` the grader can see) covered by empty read-only mounts, and as
  the unprivileged user ``nobody``, so that the submission can neither undo those mounts nor
  read the grader's memory; its scratch folder is mounted over ``/tmp`` and empty folders
  over ``/var/tmp``, ``/dev/shm``, ``/home``, ``/mnt`` and ``/media``. Elsewhere it runs
  without them (the ``isolation`` column says which). Other world-readable files of the
  machine (another checkout of the course, say) stay readable: grade in a container or on a
  machine that holds only the grading checkout.
"""
from __future__ import annotations

import json
import os
import resource
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = Path(__file__).resolve().parent / "child.py"
NOBODY = 65534
STAGE = "/mnt"   # inside the new mount namespace: a private tmpfs that stages the bind mounts


def isolation_available() -> bool:
    """Root on Linux with unshare and setpriv: namespaces and an unprivileged child."""
    return (sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0
            and shutil.which("unshare") is not None and shutil.which("setpriv") is not None)


def kept_under_tmp() -> list[str]:
    """The Python installation folders of the grader that lie under ``/tmp`` (a clone in
    ``/tmp`` with its virtual environment): the isolated child's ``/tmp`` is its scratch folder,
    and these are bound back into it, read-only, so that its interpreter still runs."""
    keep = []
    for p in (sys.prefix, sys.base_prefix):
        r = Path(p).resolve()
        if r.is_relative_to("/tmp") and str(r) not in keep:
            keep.append(str(r))
    return keep


def linflow_dirs() -> list[Path]:
    """Folders of the ``linflow`` package this process would import (and the editable
    install's source, if that is another one), found without importing it."""
    import importlib.util

    found = []
    spec = importlib.util.find_spec("linflow")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        found.append(Path(loc).resolve())
    try:
        from importlib.metadata import distribution

        url = json.loads(distribution("linflow").read_text("direct_url.json") or "{}").get("url", "")
        if url.startswith("file://") and (Path(url[7:]) / "linflow").is_dir():
            found.append((Path(url[7:]) / "linflow").resolve())
    except Exception:   # not installed as a distribution: the import location is enough
        pass
    return list(dict.fromkeys(found))


def _stub_package(src: Path, dest: Path, banned: list[str]) -> None:
    """Copy of the linflow package at DEST in which every banned submodule's folder or file is
    replaced by a module that refuses to import, with the reason."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.so", "*.pyd"))
    for b in banned:
        parts = b.split(".")
        if parts[0] != "linflow" or len(parts) < 2:
            continue
        rel = Path(*parts[1:])
        target = dest / rel
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()
            stub = target / "__init__.py"
        else:
            target = target.with_suffix(".py")
            if target.exists():
                target.unlink()
            stub = target
        stub.write_text(f"raise ImportError({b!r} ' is not available in this assignment (the "
                        f"assignment asks you to compute it yourself)')\n")


class Phase1Error(RuntimeError):
    pass


class Phase1:
    """One submission's phase 1. Use as a context manager; :meth:`request` talks to it."""

    def __init__(self, cells: list[tuple[int, str]], banned: list[str], hide: list[Path],
                 timeout: float, memory_mb: int):
        self.cells, self.banned, self.timeout, self.memory_mb = cells, banned, timeout, memory_mb
        self.hide = [Path(p).resolve() for p in hide if Path(p).exists()]
        self.isolated = isolation_available()
        self.proc = None
        self.scratch = None
        self.deadline = None
        self._buf = b""

    # ---------------------------------------------------------------- start / stop
    def __enter__(self):
        self.scratch = Path(tempfile.mkdtemp(prefix="grade-phase1-"))
        shutil.copy(CHILD, self.scratch / "child.py")
        (self.scratch / "cells.json").write_text(json.dumps(self.cells))
        dirs = linflow_dirs()
        if dirs:
            _stub_package(dirs[0], self.scratch / "linflow", self.banned)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        # isolated, the scratch folder is mounted over /tmp (the child sees only it there, and
        # the grader's own Python folders if they lie under /tmp, bound back read-only)
        home = "/tmp" if self.isolated else str(self.scratch)
        argv = [sys.executable, "-E", "-s", f"{home}/child.py", f"{home}/cells.json",
                str(req_r), str(rep_w), ",".join(self.banned)]
        # -E -s: no PYTHONPATH, no user site; the script's folder (the stub linflow) comes first
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "TMPDIR": home,
               "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.mpl",
               "LINFLOW_PROGRESS": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        if self.isolated:
            hide = [p for p in self.hide + [d / "bounds" for d in linflow_dirs()] if p.is_dir()]
            q = shlex.quote
            script = "set -e; " + "".join(
                f"mount -t tmpfs -o ro,size=4k,mode=0555 none {q(str(p))}; " for p in hide)
            keep = kept_under_tmp()
            if keep:   # staged on a private tmpfs, then bound back inside the new /tmp
                script += f"mount -t tmpfs -o size=64k none {STAGE}; "
                for i, k in enumerate(keep):
                    (self.scratch / Path(k).relative_to("/tmp")).mkdir(parents=True, exist_ok=True)
                    script += f"mkdir {STAGE}/keep{i}; mount --bind {q(k)} {STAGE}/keep{i}; "
            script += f"mount --bind {q(str(self.scratch))} /tmp; "
            for i, k in enumerate(keep):
                script += f"mount --bind {STAGE}/keep{i} {q(k)}; mount -o remount,bind,ro {q(k)}; "
            script += ("for d in /var/tmp /dev/shm /home /mnt /media; do "
                       "if [ -d $d ]; then mount -t tmpfs -o size=64m none $d; fi; done; "
                       'cd /tmp; exec "$@"')
            os.chown(self.scratch, NOBODY, NOBODY)
            for p in self.scratch.rglob("*"):
                os.lchown(p, NOBODY, NOBODY)
            argv = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child",
                    "--mount-proc", "--propagation", "private", "--", "/bin/sh", "-c", script,
                    "sh", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                    "--inh-caps=-all", "--", *argv]
        limits = self._limits()
        self.proc = subprocess.Popen(argv, cwd=self.scratch, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.scratch / "stderr.txt", "wb"),
                                     pass_fds=(req_r, rep_w), preexec_fn=limits,
                                     start_new_session=True)
        os.close(req_r)
        os.close(rep_w)
        self.req, self.rep = req_w, rep_r
        self.deadline = time.monotonic() + self.timeout
        return self

    def _limits(self):
        mem = self.memory_mb * 2 ** 20
        cpu = int(self.timeout) + 1

        def set_limits():
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 2 ** 20, 256 * 2 ** 20))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        return set_limits

    def __exit__(self, *exc):
        for fd in (self.req, self.rep):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc is not None:
            self._kill()
        shutil.rmtree(self.scratch, ignore_errors=True)
        return False

    def _kill(self):
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    # ---------------------------------------------------------------- requests
    def request(self, req: dict, max_bytes: int = 256 * 2 ** 20) -> dict:
        """Send one request and read its one-line reply as JSON (raises Phase1Error on a
        timeout, a dead process, or a reply that is not JSON)."""
        try:
            os.write(self.req, (json.dumps(req) + "\n").encode())
        except (BrokenPipeError, OSError):
            raise Phase1Error(self._death("before it answered"))
        while b"\n" not in self._buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self._kill()
                raise Phase1Error(f"timeout after {self.timeout:.0f} s")
            ready, _, _ = select.select([self.rep], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.rep, 1 << 20)
            if not chunk:
                raise Phase1Error(self._death("before it answered"))
            self._buf += chunk
            if len(self._buf) > max_bytes:
                self._kill()
                raise Phase1Error("its reply was larger than the grader reads")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            out = json.loads(line.decode())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise Phase1Error("its reply was not the grader's format")
        if not isinstance(out, dict):
            raise Phase1Error("its reply was not the grader's format")
        return out

    def _death(self, when: str) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self.proc.returncode
        why = f"exit {code}" if code is not None and code >= 0 else f"signal {-(code or 0)}"
        if code is not None and code < 0 and -code == 24:
            why = "CPU time limit"
        tail = ""
        try:
            lines = (self.scratch / "stderr.txt").read_text(errors="replace").strip().splitlines()
            tail = next((ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else "")
        except OSError:
            pass
        return f"the submission's process ended ({why}) {when}" + (f": {tail[:200]}" if tail else "")
