"""One writer per results store: a lock file beside the store's resolved path.

While a sweep writes a store it holds ``<resolved path>.lock`` with ``flock`` (released by
the operating system when the process ends, even when it is killed).  The path is resolved
first (``os.path.realpath``), so a symbolic link to the store under another name
contends for the same lock; the lock file is opened with ``O_NOFOLLOW`` and must be a
regular file, so a symbolic link placed at the lock's name is refused instead of followed
(and its target truncated).  On read-only media no lock can be taken and none is needed:
``lock`` then yields ``False`` and the caller only reads.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat

__all__ = ["SweepLocked"]

#: errors of ``open`` meaning "this place cannot be written" (read-only media, no permission)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class SweepLocked(RuntimeError):
    """Another sweep is writing the same results file."""


def lock_path(path):
    """The lock file of the store at ``path``: its resolved path plus ``.lock``."""
    return os.path.realpath(path) + ".lock"


def _open(name, path):
    """A descriptor of the lock file ``name``, or ``None`` where the place is read-only."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(name):
            raise SweepLocked(
                f"linflow: the lock file {name!r} of {path!r} is a symbolic link; a sweep never follows "
                f"one there (it would overwrite the link's target). Remove the link and run again."
            ) from None
        if exc.errno in READ_ONLY:
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SweepLocked(f"linflow: the lock file {name!r} of {path!r} is not a regular file; remove it.")
    return fd


@contextlib.contextmanager
def lock(path):
    """Hold the lock of ``path`` while a sweep writes it; yields ``True``, or ``False`` when read-only.

    A second holder gets :class:`SweepLocked`, which names the first (process id and host).
    """
    if not path:
        yield True
        return
    import fcntl
    import socket

    name = lock_path(path)
    while True:
        fd = _open(name, path)
        if fd is None:
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SweepLocked(
                f"linflow: another sweep is writing {path!r} ({holder}; lock file {name!r}). A results "
                f"file has one writer: wait for that sweep to finish, or give this one another path."
            ) from None
        try:  # the lock file we hold must still be the one at that path (its last holder unlinks it)
            st = os.stat(name, follow_symlinks=False)
            same = st.st_ino == os.fstat(fd).st_ino and st.st_dev == os.fstat(fd).st_dev
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
    try:
        yield True
    finally:
        try:
            os.unlink(name)
        finally:
            os.close(fd)  # closing releases the flock
