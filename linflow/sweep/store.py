"""The results store of a sweep: its format, its reading rule, and the checks of a resume.

Formats
    A path ending in ``.parquet`` is a Parquet dataset folder (:mod:`linflow.sweep.parquet`,
    one file per batch); any other path is a JSON Lines file (:mod:`linflow.sweep.jsonl`).
    ``format="jsonl"`` or ``format="parquet"`` chooses explicitly.
Reading rule
    Rows are read in the order they were written.  **The first row of a key wins**; the one
    exception is a point re-run with ``retry_failed=True``, whose first successful row
    replaces its failed one.  Malformed entries (a line that is not JSON, that is JSON but
    not an object, or not UTF-8; an unreadable Parquet part; a row without a string
    ``key``, a boolean ``ok`` or a string ``status``) and later rows of a key already read
    are skipped with **one** :class:`MalformedRowsWarning` that counts them; they are left
    in the store.
A resume
    must use the settings the stored rows were run with (``check_settings``), and its
    ``build`` must make the same networks for the points already stored
    (``check_fingerprints``, on a sample of them).
"""
from __future__ import annotations

import os
import warnings

from .jsonl import JsonLines
from .parquet import Parquet

__all__ = ["MalformedRowsWarning", "read_rows"]

FORMATS = {"jsonl": JsonLines, "parquet": Parquet}
#: the fields a row must have, and their types
REQUIRED = {"key": str, "ok": bool, "status": str}


class MalformedRowsWarning(UserWarning):
    """Entries of a results store that were skipped when reading it (they stay in the store)."""


def open_store(path, format=None):
    """The store at ``path``: Parquet for a ``.parquet`` suffix (or ``format="parquet"``), else JSON Lines."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"linflow: path must be a file name (str or os.PathLike); got {type(path).__name__}.")
    path = os.fspath(path)
    if format is None:
        format = "parquet" if path.rstrip("/").endswith(".parquet") else "jsonl"
    if format not in FORMATS:
        raise ValueError(f"linflow: format must be one of {sorted(FORMATS)} or None; got {format!r}.")
    return FORMATS[format](path.rstrip("/") if format == "parquet" else path)


def prepare_path(store):
    """Refuse a path that cannot hold ``store`` and create its folder; a clear ``ValueError`` otherwise."""
    store.check_path()
    parent = os.path.dirname(os.path.abspath(store.path))
    if os.path.isdir(parent):
        return
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"linflow: cannot create the folder {parent!r} for the results {store.path!r}: "
            f"{exc.strerror or exc}. Give a path in a folder that exists or can be created."
        ) from None


def _well_formed(row):
    return all(isinstance(row.get(k), t) for k, t in REQUIRED.items())


def select(raw, bad=0, where="the results store"):
    """Apply the reading rule to ``raw`` rows (file order); ``bad`` entries were already unreadable."""
    index, out, duplicates = {}, [], 0
    for row in raw:
        if not _well_formed(row):
            bad += 1
            continue
        k = row["key"]
        if k not in index:
            index[k] = len(out)
            out.append(row)
        elif not out[index[k]]["ok"] and row["ok"]:
            out[index[k]] = row  # retry_failed: the first success replaces the failure
        else:
            duplicates += 1
    if bad or duplicates:
        parts = []
        if bad:
            parts.append(f"{bad} malformed entr{'y' if bad == 1 else 'ies'}")
        if duplicates:
            parts.append(f"{duplicates} later row{'s' if duplicates > 1 else ''} of keys already read")
        warnings.warn(
            f"linflow: {where}: skipped {' and '.join(parts)} (the first row of a key wins; they are left "
            "in the store).", MalformedRowsWarning, stacklevel=3,
        )
    return out


def read_rows(path, format=None):
    """The rows saved in a results store, one per key (the reading rule of :mod:`linflow.sweep.store`).

    A JSON Lines file or a Parquet folder (``.parquet``); a missing store has no rows.  A
    row of a Parquet store has every column of the store (``None`` where it had no value).
    """
    if not path:
        return []
    store = open_store(path, format)
    store.check_path()
    raw, bad = store.read_raw()
    return select(raw, bad, repr(store.path))


def check_settings(path, rows, stored):
    """Refuse to resume ``path`` with settings other than those its rows were run with.

    ``stored(row)`` gives the settings the sweep would store for that row now (they depend
    on the row's dtype: the default ``rtol``).
    """
    for row in rows:
        saved = row.get("settings")
        stored_now = stored(row)
        if not isinstance(saved, dict) or saved == stored_now:
            continue  # (rows written before settings were stored carry them only in their key)
        changed = [k for k in (*stored_now, *(k for k in saved if k not in stored_now))
                   if saved.get(k) != stored_now.get(k)]
        if not changed:
            continue
        what = "; ".join(f"{k}: saved {saved.get(k)!r}, now {stored_now.get(k)!r}" for k in changed)
        raise ValueError(
            f"linflow: {path!r} holds rows of a sweep run with other settings ({what}). A resume must use "
            f"the settings of the saved rows: pass the same {', '.join(changed)}, or write to another path."
        )


def sample(n, k):
    """``k`` indices spread evenly over ``range(n)``, the first and the last included (all if ``k >= n``)."""
    if k >= n:
        return list(range(n))
    if k <= 1:
        return [0][:k]
    return sorted({round(j * (n - 1) / (k - 1)) for j in range(k)})


def check_fingerprints(path, pairs, fingerprint_of):
    """Refuse a resume whose ``build`` makes other networks than the stored rows were run on.

    ``pairs`` are ``(point, saved row)``; ``fingerprint_of(point)`` rebuilds the point.
    Rows without a ``fingerprint`` (``build`` rejected the point, or the row was written before
    fingerprints were stored) are not checked.
    """
    for point, row in pairs:
        if row.get("fingerprint") is None:  # no network was made (build rejected the point)
            continue
        now = fingerprint_of(point)
        if now != row["fingerprint"]:
            raise ValueError(
                f"linflow: build makes another network for the point {point!r} than the one stored in "
                f"{path!r} (stored: {row['fingerprint']}; now: {now}). The saved rows belong to another "
                "build: restore that build, or write this sweep to another path."
            )
