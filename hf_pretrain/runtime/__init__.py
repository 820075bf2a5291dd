"""The run machinery below every recipe's layer: output folders a run may write to, and the lock that keeps one
live run per folder. ``training``, ``glue`` and ``prepare`` all build on it; it knows nothing of them."""

from .folders import check_writable_dir
from .lock import OutputDirLock, lock_output_dir

__all__ = ["OutputDirLock", "check_writable_dir", "lock_output_dir"]
