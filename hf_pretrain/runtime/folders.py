"""Output folders: a path a run can write into, said in one line before any work when it cannot."""

from __future__ import annotations

import os

from ..errors import HfPretrainError

# The name of the empty file a process writes and removes to see that it can write: another process listing the
# folder meanwhile (a run's main process, claiming it while the others check it) must not count it as a user's.
WRITE_PROBE_PREFIX = ".write-test-"


def check_writable_dir(path: str, flag: str = "--output_dir") -> None:
    """Create ``path`` if needed and check that this process can write there; a file in the way, a file on the
    path or a read-only folder is one :class:`HfPretrainError` naming ``flag``."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise HfPretrainError(f"{flag} {path}: is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f"{WRITE_PROBE_PREFIX}{os.getpid()}")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as err:
        raise HfPretrainError(f"{flag} {path}: cannot write there ({err.strerror})") from None
