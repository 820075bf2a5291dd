"""One live run per output folder.

Two runs writing one ``--output_dir`` would leave a mix of their checkpoints and final weights. The run's main
process holds an exclusive ``flock`` on ``OUTPUT_DIR/.hf_pretrain.lock`` (:data:`~hf_pretrain.constants.OUTPUT_DIR_LOCK`) from before any data work until the end;
the file names the holder (host, pid, start time) for the refusal message. The kernel drops the lock when its
process dies, however it dies, so a lock left by a killed run is taken over (and said) rather than refused.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import logging
import os
import socket
import time

from ..constants import OUTPUT_DIR_LOCK
from ..errors import HfPretrainError
from .folders import check_writable_dir

logger = logging.getLogger(__name__)


def _describe(holder: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"])) if "started" in holder else "?"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {started}"


class OutputDirLock:
    """``acquire()`` or a one-line refusal naming the run that holds ``output_dir``; ``release()`` at the end."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, OUTPUT_DIR_LOCK)
        self._fd: int | None = None

    def _holder(self, fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # A file system without flock (some network mounts): run, but say what is not guarded.
                os.close(fd)
                logger.warning("--output_dir %s: cannot lock it (%s): a second run on this folder would not be "
                               "detected", self.output_dir, err.strerror)
                return
            holder = self._holder(fd)
            os.close(fd)
            raise HfPretrainError(
                f"--output_dir {self.output_dir} is in use by another run ({_describe(holder)}): wait for it to end, "
                "or choose another --output_dir"
            ) from None
        stale = self._holder(fd)
        if stale:
            logger.warning("--output_dir %s: taking over the lock of a run that ended without releasing it (%s)",
                           self.output_dir, _describe(stale))
        record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the file, then drop the lock (in that order, so a run that opens the file next finds it new)."""
        if self._fd is None:
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None


def lock_output_dir(output_dir: str, main_process: bool = True) -> OutputDirLock | None:
    """On the run's main process (global rank 0: ``main_process``), lock ``output_dir`` until the process exits
    (normally, by an error or by a signal it handles; a killed one's lock is dropped by the kernel). None on the
    other processes. A folder that cannot be written (a file in the way, read-only) is one line first."""
    if not main_process:
        return None
    check_writable_dir(output_dir)
    lock = OutputDirLock(output_dir)
    lock.acquire()
    atexit.register(lock.release)
    return lock
