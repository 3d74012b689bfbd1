"""One daemon per data folder: an exclusive ``flock`` the kernel drops when the process dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from aggregator.errors import DataDirLockedError, StoreError

__all__ = ["LOCK_NAME", "DataDirLock"]

LOCK_NAME = "aggregator.lock"


class DataDirLock:
    """An exclusive ``flock`` on ``data_dir/aggregator.lock``, holding the owner's pid.

    The kernel drops the lock when the process dies, so a ``kill -9`` never
    leaves a stale lock behind; the pid inside is only for the message.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            DataDirLockedError: another process holds it (its pid in the message).
            StoreError: the folder or lock file cannot be created.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the lock file: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirLockedError(str(self.path.parent), pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its pid no longer matters)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
