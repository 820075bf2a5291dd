"""The run machinery below every recipe's layer: a run's process (logging, the arguments its Trainer gets, a clean
end), output folders it may write to, the lock that keeps one live run per folder, the precision it trains in,
files shared between its processes, and the user's plugins. ``training``, ``glue`` and ``prepare`` all build on
it; it knows nothing of them.

Only the light parts are imported here: ``process`` and ``precision`` import transformers' Trainer machinery
(seconds), which ``hf-pretrain prepare`` never needs; a recipe imports them from their modules."""

from .folders import check_writable_dir
from .lock import OutputDirLock, lock_output_dir
from .plugins import load_plugins

__all__ = ["OutputDirLock", "check_writable_dir", "load_plugins", "lock_output_dir"]
