"""The run machinery below every recipe's layer: a run's process (logging, the arguments its Trainer gets, a clean
end), output folders it may write to, the lock that keeps one live run per folder, the precision it trains in,
files shared between its processes, and the user's plugins. ``training``, ``glue`` and ``prepare`` all build on
it; it knows nothing of them."""

from .folders import check_writable_dir
from .lock import OutputDirLock, lock_output_dir
from .plugins import load_plugins
from .process import configure_logging, finish, training_args_for_trainer, training_summary

__all__ = ["OutputDirLock", "check_writable_dir", "configure_logging", "finish", "load_plugins", "lock_output_dir",
           "training_args_for_trainer", "training_summary"]
