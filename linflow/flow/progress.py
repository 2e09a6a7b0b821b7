"""Progress bars for long runs: tqdm, shown only when someone is watching."""
from __future__ import annotations

import os
import sys

__all__ = ["progress_bar"]


def _interactive():
    if os.environ.get("LINFLOW_PROGRESS", "").lower() in ("0", "false", "no", "off"):
        return False
    if os.environ.get("LINFLOW_PROGRESS", "").lower() in ("1", "true", "yes", "on"):
        return True
    try:
        return sys.stderr.isatty()
    except Exception:  # pragma: no cover
        return False


class _Bar:
    def __init__(self, total, desc):
        from tqdm.auto import tqdm

        # delay: nothing is drawn for runs shorter than a couple of seconds
        self._bar = tqdm(total=float(total), desc=desc, delay=2.0, unit="t",
                         bar_format="{l_bar}{bar}| t={n:.3g}/{total:.3g} [{elapsed}<{remaining}]")
        self._n = 0.0

    def update_to(self, value):
        value = float(value)
        if value > self._n:
            self._bar.update(value - self._n)
            self._n = value

    def close(self):
        self._bar.close()


def progress_bar(progress, total, desc="linflow"):
    """A bar over ``[0, total]`` if ``progress`` is True, or None/auto and interactive.

    ``progress=None`` (default) shows a bar only on a terminal, and only for runs
    that last more than two seconds; set ``LINFLOW_PROGRESS=0`` to silence it.
    """
    show = _interactive() if progress is None else bool(progress)
    return _Bar(total, desc) if show else None
