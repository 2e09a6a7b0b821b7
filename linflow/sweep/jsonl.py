"""The JSON Lines store: one row per line of a text file, appended and flushed per batch.

NaN and infinities are written as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no
such numbers) and read back as floats.  A line that an interruption tore in half stays one
bad line: the next append ends it first.
"""
from __future__ import annotations

import json
import os

from .points import from_json_value, json_value, plain

__all__: list[str] = []  # the store format behind a path ending in anything but .parquet (internal)


class JsonLines:
    """Rows of a sweep in a JSON Lines file at ``path``."""

    format = "jsonl"

    def __init__(self, path):
        self.path = path

    def exists(self):
        return os.path.isfile(self.path)

    def check_path(self):
        """A clear ``ValueError`` if ``path`` cannot hold this store (it is a folder)."""
        if os.path.isdir(self.path):
            raise ValueError(
                f"linflow: the results path {self.path!r} is a folder; a JSON Lines store is one file. "
                "Give a file name (rows.jsonl), or a name ending in .parquet for a Parquet store."
            )

    def read_raw(self):
        """``(rows, bad)``: every line that is a JSON object, in file order, and the count of the others."""
        rows, bad = [], 0
        if not self.exists():
            return rows, bad
        with open(self.path, "rb") as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):  # torn by an interruption, or not JSON
                    bad += 1
                    continue
                if not isinstance(row, dict):
                    bad += 1
                    continue
                rows.append({k: from_json_value(v) for k, v in row.items()})
        return rows, bad

    def append(self, rows):
        """Append ``rows`` (one line each), flushed to the disk before returning."""
        if not rows:
            return
        torn = False
        if os.path.exists(self.path) and os.path.getsize(self.path):
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn = fh.read(1) != b"\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            if torn:  # an interrupted write left half a line: end it, so it stays one bad line
                fh.write("\n")
            for row in rows:
                fh.write(json.dumps(json_value(plain(row)), sort_keys=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
