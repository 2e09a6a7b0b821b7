"""The command line, the sweeps and the manifests shared by the studies.

Every study module defines ``NAME``, ``QUESTION``, ``SETTINGS`` (the keywords of
``lf.sweep.run``: ``t_end`` and flow settings), ``groups(tiny)`` (the declared grid as named
groups of points; a group is one resumable results store), ``build(point)`` and
``measure_batch(Ws0, loss, traj)``, and ``COLUMNS`` (the columns shipped).  ``main`` runs it:

    python -m studies.<name> [--out studies/data] [--client local|none|tcp://host:port] [--tiny]
    python -m studies.<name> --bench 2000     # throughput: one process and a 2-worker LocalCluster

The working stores (JSON Lines, one per group, resumable) go to ``<out>/work/<name>/``; the
shipped table is ``<out>/<name>.parquet`` (zstd, the columns in ``COLUMNS``) and the manifest
``<out>/<name>.json``.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

import linflow as lf
from linflow import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "studies", "data")


def seed_of(*parts):
    """A generator seeded by a tuple of small non-negative integers (one stream per point)."""
    return np.random.default_rng([int(p) for p in parts])


def random_unimodal(rng, L, k, scale, identity=False):
    r"""Random unimodal weights with all widths ``k`` (:func:`linflow.init.unimodal`): ``(Ws, l_star)``.

    :math:`l^*` uniform on ``1..L``; :math:`D_l = \pm Q_l\,\mathrm{diag}(d_l u_l)\,Q_l^\top` with
    :math:`Q_l` a random orthogonal frame, the level :math:`d_l` uniform on [0.2, 2] and
    :math:`u_l` uniform on :math:`[0.5, 1.5]^k` (``identity``: :math:`D_l = \pm d_lI`), sign
    ``+`` for :math:`l < l^*`; the core layer :math:`W_{l^*}` has scale ``scale``.
    """
    l_star = int(rng.integers(1, L + 1))
    D = []
    for l in range(1, L):
        level = float(rng.uniform(0.2, 2.0))
        if identity:
            d = level * np.eye(k)
        else:
            Q = np.linalg.qr(rng.standard_normal((k, k)))[0]
            d = (Q * (level * rng.uniform(0.5, 1.5, k))) @ Q.T
        D.append(d if l < l_star else -d)
    return list(lf.init.unimodal((k,) * (L + 1), l_star, D, seed=rng, scale=scale)), l_star


def git_commit():
    """``(commit, dirty)`` of the repository the studies run from (``(None, None)`` outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "linflow", "studies/*.py"],
                                    cwd=ROOT, capture_output=True, text=True).stdout.strip())
        return head, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, None


def open_client(spec):
    """``(client, workers, owned)`` from ``--client``: ``none``, ``local`` (or ``local:N``), or an address."""
    if spec in (None, "none"):
        return None, 1, False
    if spec.startswith("local"):
        from linflow.distributed import local_client

        c = local_client(int(spec.split(":")[1]) if ":" in spec else None)
        return c, len(c.scheduler_info()["workers"]), True
    from distributed import Client

    if not spec.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise ValueError(
            f"studies: --client must be 'none', 'local', 'local:N' or a scheduler address such as "
            f"tcp://host:8786; got {spec!r}."
        )
    c = Client(spec, timeout=30)
    return c, len(c.scheduler_info()["workers"]), False


def close_client(client, owned):
    if client is not None and owned:
        cluster = client.cluster
        client.close()
        cluster.close()


def run_groups(study, groups, work, client=None, progress=None):
    """Run every group (``{name: points}``) into its store under ``work``; return all rows and the wall time."""
    os.makedirs(work, exist_ok=True)
    rows = {name: [] for name in groups}
    t0 = time.perf_counter()
    chunk = getattr(study, "CHUNK", None) or max(map(len, groups.values()), default=1)
    rounds = max((math.ceil(len(g) / chunk) for g in groups.values()), default=0)
    for r in range(rounds):  # in rounds over the groups, so that an interrupted run covers all of them
        for name, points in groups.items():
            part = points[r * chunk:(r + 1) * chunk]
            if part:
                rows[name] += sweep.run(part, study.build, measure_batch=measure_of(study, name),
                                        path=os.path.join(work, f"{name}.jsonl"), client=client,
                                        progress=progress, max_batch=getattr(study, "MAX_BATCH", None),
                                        **study.SETTINGS)
    return [r for name in groups for r in rows[name]], time.perf_counter() - t0


def measure_of(study, group):
    """The ``measure_batch`` of a group: ``study.measure_for(group)`` if the study has one."""
    return study.measure_for(group) if hasattr(study, "measure_for") else study.measure_batch


def table(study, rows):
    """The shipped columns of ``rows`` as a pandas DataFrame (point parameters first)."""
    import pandas as pd

    df = pd.DataFrame([{k: r.get(k) for k in study.COLUMNS} for r in rows], columns=list(study.COLUMNS))
    return df


def write_parquet(df, path):
    df.to_parquet(path, compression="zstd", index=False)


def throughput(study, groups, workers=2):
    """Points per second of ``groups`` in one process and on a ``workers``-worker LocalCluster.

    Returns the costs of :func:`linflow.distributed.sweep_time`: ``t_point`` from the
    one-process run, ``o_task`` from the cluster run (its wall time less ``rounds * B *
    t_point``, per round of tasks), the batch size ``B`` the cluster's probe chose for the
    first group, and the cluster's start-up time.
    """
    import tempfile

    from linflow.distributed import local_client
    from linflow.sweep.cluster import _probe

    P = sum(len(g) for g in groups.values())
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        c0 = time.process_time()
        _rows, t1 = run_groups(study, groups, os.path.join(tmp, "one"), None, False)
        cpu1 = time.process_time() - c0
        t0 = time.perf_counter()
        client = local_client(workers)
        start = time.perf_counter() - t0
        try:
            rows, t2 = run_groups(study, groups, os.path.join(tmp, "two"), client, False)
            first = next(iter(groups.values()))
            flow = {k: v for k, v in study.SETTINGS.items() if k != "t_end"}
            B = int(client.submit(_probe, study.build, first[:16], pure=False, t_end=study.SETTINGS["t_end"],
                                  flow_kwargs=flow, max_batch=getattr(study, "MAX_BATCH", None), memory=None,
                                  backend=None).result())
        finally:
            close_client(client, True)
    t_point = t1 / P
    tasks = sum(math.ceil(len(g) / B) for g in groups.values())
    rounds = math.ceil(tasks / workers)
    o_task = max(0.0, (t2 - P * t_point / workers) / rounds)
    return dict(points=P, one_process_s=t1, one_process_points_per_s=P / t1, cluster_workers=workers,
                cluster_s=t2, cluster_points_per_s=P / t2, cluster_start_s=start, batch=B, tasks=tasks,
                t_point_s=t_point, o_task_s=o_task, failed=sum(not r["ok"] for r in rows),
                one_process_cpu_s=cpu1, t_point_cpu_s=cpu1 / P, load_average_1min=load,
                note="measured on a shared machine: wall times include waiting for the CPU (see "
                     "load_average_1min); t_point_cpu_s is the CPU time per point in one process")


def manifest(study, groups, rows, wall, workers, client_spec, argv, extra=None):
    """The manifest of a run: versions, commit, grid, settings, row counts, wall time, workers, throughput."""
    commit, dirty = git_commit()
    ok = sum(bool(r.get("ok")) for r in rows)
    m = {
        "study": study.NAME,
        "question": study.QUESTION,
        "linflow_version": lf.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "command": "python -m studies." + study.NAME + (" " + " ".join(argv) if argv else ""),
        "grid": study.GRID,
        "groups": {k: len(v) for k, v in groups.items()},
        "settings": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in study.SETTINGS.items()},
        "rows": {"total": len(rows), "ok": ok, "failed": len(rows) - ok},
        "wall_s": wall,
        "client": client_spec or "none",
        "workers": workers,
        "points_per_s": len(rows) / wall if wall > 0 else None,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    m.update(extra or {})
    return m


def predict(cost, points, workers=64):
    """Predicted wall time on ``workers`` workers (:func:`linflow.distributed.sweep_time`) from measured costs.

    The tasks hold the measured batch, capped at ``ceil(points / workers)`` points: a run on
    ``workers`` workers passes ``max_batch`` so that every worker gets a task (a memory-sized
    batch can hold a whole small grid, which would leave all workers but one idle).
    """
    from linflow.distributed import sweep_time

    batch = min(int(cost["batch"]), -(-int(points) // int(workers)))
    return sweep_time(points, workers, batch, t_point=cost["t_point_cpu_s"], o_task=cost["o_task_s"])


def export(study, out, args, argv):
    """Table and manifest of the rows stored so far, marked complete or not against the declared grid."""
    work = os.path.join(out, "work", study.NAME)
    groups = study.groups(args.tiny, work)
    rows = stored_rows(work)
    settings = sweep_settings(study)
    declared = {sweep.point_key(p, settings) for g in groups.values() for p in g}
    rows = [r for r in rows if r.get("key") in declared]
    df = table(study, rows)
    write_parquet(df, os.path.join(out, f"{study.NAME}.parquet"))
    extra = study.summary(df) if hasattr(study, "summary") else {}
    if hasattr(study, "finish"):
        extra.update(study.finish(df, out, tiny=args.tiny, evals=args.evals))
    mpath = os.path.join(out, f"{study.NAME}.json")
    old = json.load(open(mpath)) if os.path.exists(mpath) else {}
    span = store_span(work)
    m = manifest(study, groups, rows, span, None, "stores", argv if argv is not None else sys.argv[1:], extra)
    m.update(declared_points=len(declared), stored_points=len(rows), complete=len(rows) == len(declared),
             wall_s_all_runs=span, workers=old.get("workers"),
             wall_note="from the stores' write times: the first group's last write to the last write "
                       "(the runs were interrupted; resume with the same command without --export)")
    m["runs"] = old.get("runs", [])
    save_manifest(mpath, m, old, len(declared))
    print(f"{study.NAME}: exported {len(rows)} of {len(declared)} declared points")
    return m


def save_manifest(path, m, old, points):
    """Write manifest ``m``, keeping the throughput measured once (``old``) and its 64-worker prediction.

    The manifest also records the SHA-256 of the shipped table beside it (``parquet_sha256``),
    which :func:`verify` checks.
    """
    if "throughput" in old:
        m["throughput"] = old["throughput"]
        m["predicted_64_workers_s"] = predict(old["throughput"], points)
    table_path = path[:-len(".json")] + ".parquet"
    if os.path.exists(table_path):
        m["parquet_sha256"] = sha256(table_path)
    with open(path, "w") as fh:
        json.dump(m, fh, indent=1)


def store_span(work):
    """Seconds from the earliest to the latest last write of the stores under ``work`` (the runs' span)."""
    times = [os.path.getmtime(f) for f in glob.glob(os.path.join(work, "*.jsonl"))]
    return max(times) - min(times) if times else 0.0


def sweep_settings(study):
    """The settings that :func:`linflow.sweep.run` hashes into every resume key of the study's points."""
    from linflow.sweep.runner import flow_settings

    t_end = study.SETTINGS.get("t_end")
    flow = flow_settings({k: v for k, v in study.SETTINGS.items() if k != "t_end"})
    return {"t_end": None if t_end is None else float(t_end), "flow": flow, "tag": None}


def main(study, argv=None):
    p = argparse.ArgumentParser(prog=f"python -m studies.{study.NAME}", description=study.QUESTION)
    p.add_argument("--out", default=DATA, help="folder of the shipped table, manifest and work stores")
    p.add_argument("--client", default="local",
                   help="'local' (a LocalCluster, one worker per core), 'local:N', 'none' (this process) "
                        "or a scheduler address tcp://host:port")
    p.add_argument("--tiny", action="store_true", help="a tiny grid (tests)")
    p.add_argument("--bench", type=int, default=0, metavar="P",
                   help="measure throughput on P points of the grid (one process and 2 workers) into the manifest")
    p.add_argument("--progress", action="store_true", help="show the progress bar even off a terminal")
    p.add_argument("--export", action="store_true",
                   help="only write the table and manifest of the rows stored so far (an interrupted run)")
    p.add_argument("--evals", type=int, default=None, help="evaluations per start of a study's search step")
    args = p.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    mpath = os.path.join(out, f"{study.NAME}.json")
    if args.export:
        return export(study, out, args, argv)
    if args.bench:
        groups = study.groups(args.tiny, None)  # the declared grid before any stage that reads stores
        total = sum(len(g) for g in groups.values())
        step = max(1, total // args.bench)  # every step-th point of every group
        cost = throughput(study, {k: g[::step] for k, g in groups.items() if g[::step]})
        m = json.load(open(mpath)) if os.path.exists(mpath) else {}
        m["throughput"] = cost
        if m.get("rows"):
            m["predicted_64_workers_s"] = predict(cost, m["rows"]["total"])
            m["predicted_64_workers_from"] = ("linflow.distributed.sweep_time(points, 64, batch, t_point_cpu_s, "
                                              "o_task_s) with the costs of 'throughput'")
        with open(mpath, "w") as fh:
            json.dump(m, fh, indent=1)
        print(json.dumps(cost, indent=1))
        return m
    work = os.path.join(out, "work", study.NAME)
    before = len(stored_rows(work))
    client, workers, owned = open_client(args.client)
    try:  # a staged grid (a pilot, then points chosen from its rows) is declared again until it stops growing
        groups, wall, done = study.groups(args.tiny, work), 0.0, 0
        while True:
            rows, dt = run_groups(study, groups, work, client, True if args.progress else None)
            wall += dt
            grown = study.groups(args.tiny, work)
            if sum(map(len, grown.values())) == sum(map(len, groups.values())) or done == 3:
                break
            groups, done = grown, done + 1
    finally:
        close_client(client, owned)
    df = table(study, rows)
    write_parquet(df, os.path.join(out, f"{study.NAME}.parquet"))
    extra = study.summary(df) if hasattr(study, "summary") else {}
    if hasattr(study, "finish"):  # a step after the sweep (the local search of eq18_search)
        extra.update(study.finish(df, out, tiny=args.tiny))
    old = json.load(open(mpath)) if os.path.exists(mpath) else {}
    m = manifest(study, groups, rows, wall, workers, args.client, argv if argv is not None else sys.argv[1:],
                 extra)
    m.update(declared_points=sum(map(len, groups.values())), stored_points=len(rows), complete=True)
    m["runs"] = old.get("runs", []) + [{"client": args.client, "workers": workers, "wall_s": wall,
                                         "new_rows": len(rows) - before}]
    # interrupted runs leave no entry: the stores' span covers them
    m["wall_s_all_runs"] = max(sum(r["wall_s"] for r in m["runs"]), store_span(work))
    save_manifest(mpath, m, old, len(rows))
    print(f"{study.NAME}: {m['rows']} in {wall:.1f} s ({workers} worker(s)); wrote {out}/{study.NAME}.parquet")
    return m


def _py(v):
    return v.item() if hasattr(v, "item") else v


def rerun(study, sample):
    """Recompute shipped rows in this process, with the study's own ``build`` and measures.

    ``sample`` is a DataFrame of shipped rows; the result has the same columns
    (``study.COLUMNS``) and order, so that the two can be compared column by column.
    """
    import pandas as pd

    points = [{k: _py(r[k]) for k in study.POINT} for r in sample.to_dict("records")]
    by_group = {}
    for i, p in enumerate(points):
        by_group.setdefault(p.get("family", "all"), []).append(i)
    rows = [None] * len(points)
    for group, idx in by_group.items():
        out = sweep.run([points[i] for i in idx], study.build, measure_batch=measure_of(study, group),
                        progress=False, max_batch=getattr(study, "MAX_BATCH", None), **study.SETTINGS)
        for i, r in zip(idx, out):
            rows[i] = r
    df = table(study, rows)
    df.index = sample.index
    return df.astype(sample.dtypes.to_dict())


def stored_rows(path):
    """Every row of the JSON Lines stores under ``path`` (a folder)."""
    rows = []
    for f in sorted(glob.glob(os.path.join(path, "*.jsonl"))):
        rows += sweep.read_rows(f)
    return rows


def sha256(path):
    """The SHA-256 of a file, in hex (the fingerprint of a shipped table in its manifest)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(study, data=DATA, sample=0, rng=None):
    """Check a study's shipped table against its manifest and its code; return ``(table, manifest)``.

    1. The table's SHA-256 is the manifest's ``parquet_sha256``: an edited, truncated or replaced
       Parquet file fails here.
    2. Its columns are ``study.COLUMNS``, its row count the manifest's, and no point occurs twice.
    3. ``sample`` rows drawn at random (``rng``, a NumPy generator) are recomputed with the
       study's own ``build`` and measures (:func:`rerun`) and must come out identical, column by
       column: a change of ``linflow`` or of the study that changes a shipped number fails here.

    Raises ``ValueError`` naming the study and what differs.
    """
    import pandas as pd

    name = study.NAME
    table_path = os.path.join(data, f"{name}.parquet")
    with open(os.path.join(data, f"{name}.json")) as fh:
        m = json.load(fh)
    want, got = m.get("parquet_sha256"), sha256(table_path)
    if want != got:
        raise ValueError(f"studies: {name}.parquet is not the table its manifest describes: SHA-256 "
                         f"{got}, the manifest records {want}. Re-export it with python -m studies.{name}.")
    df = pd.read_parquet(table_path)
    if tuple(df.columns) != tuple(study.COLUMNS) or len(df) != m["rows"]["total"]:
        raise ValueError(f"studies: {name}.parquet has columns {list(df.columns)} and {len(df)} rows; "
                         f"expected {list(study.COLUMNS)} and {m['rows']['total']} rows.")
    twice = int(df.duplicated(subset=list(study.POINT)).sum())
    if twice:
        raise ValueError(f"studies: {name}.parquet holds {twice} point(s) twice.")
    if sample:
        rng = np.random.default_rng() if rng is None else rng
        pick = df.iloc[np.sort(rng.choice(len(df), int(sample), replace=False))]
        again = rerun(study, pick)
        differ = [c for c in df.columns if not again[c].equals(pick[c])]
        if differ:
            raise ValueError(f"studies: {name}: {len(pick)} shipped rows recomputed, columns {differ} "
                             f"differ from the shipped ones (rows {list(pick.index[:5])}...).")
    return df, m
