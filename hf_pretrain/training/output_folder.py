"""Whose ``--output_dir`` is it: a pretraining run writes only into a new or empty folder, a folder one of its runs
marked as its own (:data:`~hf_pretrain.constants.RUN_MARKER`), or, with ``--overwrite_output_dir``, over what a
user keeps there. A run's final save writes ``README.md``, ``config.json`` and ``report.md``: without this check,
``--output_dir .`` in a project's root replaced its README with a model card."""

from __future__ import annotations

import logging
import os
import re
import shutil

from ..constants import OUTPUT_DIR_LOCK, PREPARATION_MARKER, RUN_MARKER
from ..errors import HfPretrainError
from ..runtime.folders import WRITE_PROBE_PREFIX, check_writable_dir

logger = logging.getLogger(__name__)

# What a run writes that a fresh run must not find again: checkpoints (resumed from), the ones set aside, and the
# sequence log (appended to).
_EARLIER_RUN = re.compile(r"^((bad-(\d+-)?)?checkpoint-\d+|sequence_ids)$")


def _is_earlier_run(folder: str, names: list[str]) -> bool:
    """A folder written before runs marked theirs: it holds a checkpoint with the Trainer's state."""
    return any(re.fullmatch(r"checkpoint-\d+", name) and os.path.isfile(os.path.join(folder, name, "trainer_state.json"))
               for name in names)


def claim_output_dir(output_dir: str, overwrite_output_dir: bool = False, main_process: bool = True) -> None:
    """Make ``output_dir`` this run's, or refuse in one line before any work: a file in the way or a read-only
    folder; a preparation's folder; a folder of the user's files without ``--overwrite_output_dir``."""
    check_writable_dir(output_dir)
    if not main_process:
        return
    names = sorted(name for name in os.listdir(output_dir)
                   if name not in (OUTPUT_DIR_LOCK, RUN_MARKER) and not name.startswith(WRITE_PROBE_PREFIX))
    marked = os.path.isfile(os.path.join(output_dir, RUN_MARKER))
    if os.path.isfile(os.path.join(output_dir, PREPARATION_MARKER)):
        raise HfPretrainError(
            f"--output_dir {output_dir}: holds a `hf-pretrain prepare` output, which this run would write over; pass "
            f"it as --prepared_dataset {output_dir} and choose another --output_dir"
        )
    if names and not marked and not _is_earlier_run(output_dir, names):
        listed = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        if not overwrite_output_dir:
            raise HfPretrainError(
                f"--output_dir {output_dir}: holds files that are not a pretraining run's ({listed}), which the run "
                "would write over (README.md, config.json, report.md, ...); choose a new or empty folder, or pass "
                "--overwrite_output_dir to write over them"
            )
        logger.warning("--overwrite_output_dir: writing into %s, which holds files of its own (%s); those of the "
                       "same names are replaced", output_dir, listed)
    with open(os.path.join(output_dir, RUN_MARKER), "w", encoding="utf-8") as f:
        f.write("A pretraining run's --output_dir (hf_pretrain): its recipes resume from and write into it.\n")


def clear_earlier_run(output_dir: str) -> list[str]:
    """``--overwrite_output_dir``: remove the earlier run's checkpoints (kept or set aside) and sequence log, so
    that nothing of it is resumed or appended to; said in one log line. Returns what was removed."""
    removed = sorted(name for name in os.listdir(output_dir) if _EARLIER_RUN.match(name)
                     and os.path.isdir(os.path.join(output_dir, name)))
    for name in removed:
        shutil.rmtree(os.path.join(output_dir, name))
    if removed:
        logger.warning("--overwrite_output_dir: starting afresh; removed the earlier run's %s from %s",
                       ", ".join(removed), output_dir)
    return removed
