"""Crash-safe checkpoints: a checkpoint is written in a staging folder and made visible by one atomic rename, so
whenever a run dies (SIGKILL, out of memory, preemption) every ``checkpoint-<step>`` folder is complete.

Old checkpoints are retired the same way round: renamed out of sight first, then deleted, so a kill during the
deletion leaves no half-deleted ``checkpoint-<step>`` behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil

STAGING = ".staging"  # inside --output_dir; hidden, and not named checkpoint-<step>, so resume never picks it
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def staging_root(output_dir: str) -> str:
    return os.path.join(output_dir, STAGING)


def discard_incomplete(output_dir: str) -> None:
    """Remove what a killed run left half-written (main process, before training)."""
    shutil.rmtree(staging_root(output_dir), ignore_errors=True)


def _fsync_tree(folder: str) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())


def publish(staged: str, final: str) -> None:
    """Make the fully written ``staged`` folder visible as ``final``: flushed to disk, then one rename."""
    _fsync_tree(staged)
    if os.path.exists(final):  # the same step saved again (a rerun past an old checkpoint): retire the old one
        retire(final)
    os.replace(staged, final)
    directory = os.open(os.path.dirname(os.path.abspath(final)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    _remove_if_empty(os.path.dirname(staged))


def retire(checkpoint: str) -> None:
    """Delete a checkpoint without ever leaving a partial one visible: rename it into staging, then delete."""
    output_dir = os.path.dirname(os.path.abspath(checkpoint))
    trash = os.path.join(staging_root(output_dir), "retired-" + os.path.basename(checkpoint))
    os.makedirs(staging_root(output_dir), exist_ok=True)
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(checkpoint, trash)
    shutil.rmtree(trash, ignore_errors=True)
    _remove_if_empty(staging_root(output_dir))


def _remove_if_empty(folder: str) -> None:
    with contextlib.suppress(OSError):  # not empty: another process's part is still being written
        os.rmdir(folder)


def checkpoints(output_dir: str) -> list[str]:
    """The visible (hence complete) checkpoints of ``output_dir``, oldest step first."""
    if not os.path.isdir(output_dir):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := _CHECKPOINT.match(name))]
    return [os.path.join(output_dir, name) for _, name in sorted(found)]


def keep_last(output_dir: str, limit: int | None, protect: str | None = None) -> None:
    """Retire all but the ``limit`` most recent checkpoints (and ``protect``, the best one, if any)."""
    if not limit or limit <= 0:
        return
    found = checkpoints(output_dir)
    keep = set(found[-limit:])
    if protect:
        keep.add(os.path.join(output_dir, os.path.basename(protect)))
    for checkpoint in found:
        if checkpoint not in keep:
            retire(checkpoint)
