"""The run machinery below every recipe's layer: output folders a run may write to, the lock that keeps one
live run per folder, and the user's plugins. ``training``, ``glue`` and ``prepare`` all build on it; it knows nothing of them."""

from .folders import check_writable_dir
from .lock import OutputDirLock, lock_output_dir
from .plugins import load_plugins

__all__ = ["OutputDirLock", "check_writable_dir", "load_plugins", "lock_output_dir"]
