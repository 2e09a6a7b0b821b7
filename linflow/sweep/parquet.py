"""The Parquet store: a dataset folder of one Parquet file per batch (pyarrow).

``rows.parquet/`` holds ``part-000000.parquet``, ``part-000001.parquet``, ... in the order
the batches finished.  Each part is written under a hidden temporary name and renamed
into place, so an interruption never leaves half a part.  Every part has the same schema:
when a batch brings a new column (or a type that needs widening, e.g. a column of
``None`` that now holds text), the earlier parts are rewritten to the widened schema, so
``pandas.read_parquet("rows.parquet")`` and ``dask.dataframe.read_parquet("rows.parquet")``
read the whole folder as one table.  NaN and infinities are stored as such.
"""
from __future__ import annotations

import os
import re

from .points import plain

__all__: list[str] = []  # the store format behind a path ending in .parquet (internal)

_PART = re.compile(r"^part-(\d{6,})\.parquet$")


def _arrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - a dependency of linflow
        raise ImportError("linflow: the Parquet store needs pyarrow (pip install pyarrow).") from exc
    return pa, pq


class Parquet:
    """Rows of a sweep in a Parquet dataset folder at ``path``."""

    format = "parquet"

    def __init__(self, path):
        self.path = path
        self._schema = None

    def exists(self):
        return os.path.isdir(self.path)

    def check_path(self):
        """A clear ``ValueError`` if ``path`` cannot hold this store (it is a file)."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ValueError(
                f"linflow: the results path {self.path!r} is a file; a Parquet store is a folder of "
                "Parquet files (one per batch). Give a new name ending in .parquet."
            )

    def parts(self):
        """The part files, in the order they were written."""
        if not self.exists():
            return []
        names = sorted((int(m.group(1)), n) for n in os.listdir(self.path) if (m := _PART.match(n)))
        return [os.path.join(self.path, n) for _, n in names]

    def read_raw(self):
        """``(rows, bad)``: the rows of every readable part, in order, and the count of unreadable parts."""
        pa, pq = _arrow()
        rows, bad = [], 0
        for part in self.parts():
            try:
                table = pq.read_table(part)
            except (OSError, pa.ArrowException, ValueError):
                bad += 1
                continue
            rows.extend(table.to_pylist())
        return rows, bad

    def _current_schema(self):
        if self._schema is None:
            pa, pq = _arrow()
            schemas = []
            for part in self.parts():
                try:
                    schemas.append(pq.read_schema(part))
                except (OSError, pa.ArrowException, ValueError):
                    continue
            self._schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else None
        return self._schema

    def _table(self, rows):
        pa, _ = _arrow()
        rows = [plain(r) for r in rows]
        cols = []
        for r in rows:
            cols.extend(k for k in r if k not in cols)
        data = {}
        for c in cols:
            try:
                data[c] = pa.array([r.get(c) for r in rows])
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise ValueError(
                    f"linflow: column {c!r} of the sweep's rows has values Parquet cannot store as one "
                    f"type ({exc}). Make measure return one type per column, or use a JSON Lines store "
                    "(a path ending in .jsonl)."
                ) from None
        return pa.table(data)

    @staticmethod
    def _conform(table, schema):
        pa, _ = _arrow()
        cols = [table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
                for f in schema]
        return pa.Table.from_arrays(cols, schema=schema)

    def _write(self, table, name):
        _, pq = _arrow()
        tmp = os.path.join(self.path, f".{name}.tmp")
        pq.write_table(table, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(self.path, name))

    def append(self, rows):
        """Write ``rows`` as the next part (widening the earlier parts' schema where needed)."""
        if not rows:
            return
        pa, pq = _arrow()
        os.makedirs(self.path, exist_ok=True)
        table = self._table(rows)
        old = self._current_schema()
        if old is None:
            schema = table.schema
        else:
            try:
                schema = pa.unify_schemas([old, table.schema], promote_options="permissive")
            except pa.ArrowException as exc:
                raise ValueError(
                    f"linflow: this batch's rows do not fit the columns already in {self.path!r} ({exc}). "
                    "Make measure return one type per column, or use a JSON Lines store (.jsonl)."
                ) from None
            if not schema.equals(old):
                for part in self.parts():
                    self._write(self._conform(pq.read_table(part), schema), os.path.basename(part))
        parts = self.parts()
        n = int(_PART.match(os.path.basename(parts[-1])).group(1)) + 1 if parts else 0
        self._write(self._conform(table, schema), f"part-{n:06d}.parquet")
        self._schema = schema
