#!/usr/bin/env python3
"""One entry point for the two jobs of this repository, each doing its own set-up.

    python3 dev.py book      build the website into _build/html (executes every page)
    python3 dev.py test      run every test: the package, the notebooks, the built site in Chromium
    python3 dev.py student   build the student edition (no solutions) into _build/student
    python3 dev.py bench     the benchmark suite (benchmarks/run.py, arguments passed on) in its own
                             venv .venv-bench with the peers diffrax, JAX, PyTorch and torchode

Each command creates (or reuses) the virtual environment .venv and installs what it
needs; a stamp of the requirement files skips reinstalling when nothing changed.
Only python3 (3.11 or newer) is needed beforehand; the browser tests install Debian's
chromium with apt-get when it is missing.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
REQS = [ROOT / "requirements.txt", ROOT / "pyproject.toml"]
CHROMIUM = "/usr/bin/chromium"


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=kw.pop("cwd", ROOT), **kw)


def check(cmd, **kw):
    r = run(cmd, **kw)
    if r.returncode:
        sys.exit(r.returncode)


def venv(extras=()):
    """Create .venv and install requirements (+ extras) unless the stamp says it is current."""
    if sys.version_info < (3, 11):
        sys.exit(f"linflow needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PY.exists():
        check([sys.executable, "-m", "venv", VENV])
        check([PY, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    h = hashlib.sha256()
    for f in REQS:
        h.update(f.read_bytes())
    h.update(",".join(extras).encode())
    stamp = VENV / f".stamp-{'-'.join(extras) or 'base'}"
    if stamp.exists() and stamp.read_text() == h.hexdigest():
        return
    spec = f".[{','.join(extras)}]" if extras else "."
    check([PY, "-m", "pip", "install", "-q", "-r", "requirements.txt", "-e", spec])
    stamp.write_text(h.hexdigest())


def env():
    e = dict(os.environ)
    e["PATH"] = f"{VENV / 'bin'}{os.pathsep}{e.get('PATH', '')}"
    e.setdefault("LINFLOW_PROGRESS", "0")
    e.setdefault("LINFLOW_STATIC", "1")  # explorers show their kernel-free face in the built site
    # two cores: pytest-xdist workers (and notebook kernels) each get one BLAS thread
    e.setdefault("OPENBLAS_NUM_THREADS", "1")
    e.setdefault("OMP_NUM_THREADS", "1")
    e.setdefault("MPLBACKEND", "Agg")
    e.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return e


def book(out=ROOT, config=None, source=ROOT, setup=True):
    """Build the site into OUT/_build/html: every page executed (cached), nitpicky, -W."""
    if setup:
        venv()
    # the install cells follow the publishing setting of _config.yml (tools/publish.py)
    if (ROOT / "tools" / "publish.py").exists():
        check([PY, ROOT / "tools" / "publish.py"], env=env())
    start = time.time()
    cmd = [VENV / "bin" / "jupyter-book", "build", source, "--path-output", out, "-n", "-W", "--keep-going"]
    if config:
        cmd += ["--config", config]
    r = run(cmd, env=env())
    elapsed = time.time() - start
    print(f"book build: {elapsed:.1f} s, exit {r.returncode}", flush=True)
    if r.returncode:
        reports = Path(out) / "_build" / "html" / "reports"
        for log in sorted(reports.glob("**/*.log")) if reports.exists() else []:
            print(f"--- {log}\n{log.read_text()[-4000:]}")
        sys.exit(r.returncode)
    post = ROOT / "tools" / "postbuild.py"
    if post.exists():
        check([PY, post, Path(out) / "_build" / "html"], env=env())
    return elapsed


def ensure_chromium():
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("LINFLOW_SKIP_BROWSER") == "1":
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        sys.exit("The browser tests need Debian's chromium: run `apt-get install chromium` as root.")
    e = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    check([apt, "update", "-q"], env=e)
    check([apt, "install", "-y", "-q", "--no-install-recommends", "chromium", "fonts-dejavu-core"], env=e)


def test(args):
    venv(("test", "dask"))  # the Dask sweep tests start LocalClusters
    ensure_chromium()
    book(setup=False)
    e = env()
    e.setdefault("LINFLOW_STUDENT_FULL", "1")  # the no-leak check covers the whole real book
    r = run([PY, "-m", "pytest", "-n", "2", *args], env=e)
    sys.exit(r.returncode)


def bench(args):
    """benchmarks/run.py in .venv-bench: linflow[bench] brings the peers (diffrax, jax, torch,
    torchode; several GB with torch's CUDA libraries), kept out of the project's own venv."""
    bvenv = ROOT / ".venv-bench"
    bpy = bvenv / "bin" / "python"
    if not bpy.exists():
        check([sys.executable, "-m", "venv", bvenv])
        check([bpy, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    h = hashlib.sha256(b"".join(f.read_bytes() for f in REQS)).hexdigest()
    stamp = bvenv / ".stamp-bench"
    if not stamp.exists() or stamp.read_text() != h:
        check([bpy, "-m", "pip", "install", "-q", "-r", "requirements.txt", "-e", ".[bench]"])
        stamp.write_text(h)
    e = dict(os.environ, LINFLOW_PROGRESS="0")  # the machine's own BLAS threads: run.py sets its own
    r = run([bpy, ROOT / "benchmarks" / "run.py", *args], env=e)
    sys.exit(r.returncode)


def student(args):
    venv(("test",))  # otter-grader (in the test extra) builds the student assignments
    check([PY, ROOT / "tools" / "student.py", *args], env=env())


def main(argv):
    if not argv or argv[0] not in ("book", "test", "student", "bench"):
        sys.exit(__doc__)
    cmd, rest = argv[0], argv[1:]
    if cmd == "book":
        book()
    elif cmd == "test":
        test(rest)
    elif cmd == "bench":
        bench(rest)
    else:
        student(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
