"""Checkpoints a run can trust: each one carries a manifest (every file's size and SHA-256) written once the
checkpoint is complete, and a checkpoint is resumed from only if its files still match it.

The Trainer writes ``checkpoint-<step>`` with its own public save path; :class:`CheckpointManifestCallback` adds
``manifest.json`` when every process has written its part (one atomic rename). A run killed while saving leaves a
checkpoint without a manifest; a disk error or a stray edit leaves one whose files do not match. Either is set
aside, named in the log, and the run resumes from the newest checkpoint that verifies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re

import torch
from transformers import TrainerCallback

from ..errors import HfPretrainError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_CHUNK = 2**22


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: str) -> list[str]:
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), folder)
            if relative != MANIFEST and not name.endswith(".tmp"):
                found.append(relative)
    return sorted(found)


def write_manifest(folder: str) -> None:
    """Record every file of ``folder`` (size and SHA-256), flushed to disk, then published by one rename."""
    entries = {}
    for relative in _files(folder):
        path = os.path.join(folder, relative)
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        entries[relative] = {"bytes": os.path.getsize(path), "sha256": _sha256(path)}
    temporary = os.path.join(folder, MANIFEST + ".tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump({"files": entries}, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, os.path.join(folder, MANIFEST))


def verify(folder: str) -> str | None:
    """Why ``folder`` is not a checkpoint to trust (in a few words), or None if every file matches its manifest."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return "incomplete: no manifest (the run stopped while saving it)"
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)["files"]
    except (OSError, ValueError, KeyError):
        return f"unreadable {MANIFEST}"
    for relative, expected in entries.items():
        file = os.path.join(folder, relative)
        if not os.path.isfile(file):
            return f"{relative} is missing"
        if os.path.getsize(file) != expected["bytes"]:
            return f"{relative} has {os.path.getsize(file):,} bytes, not {expected['bytes']:,}"
        if _sha256(file) != expected["sha256"]:
            return f"{relative} does not match its checksum"
    return None


def candidates(output_dir: str) -> list[str]:
    """Every ``checkpoint-<step>`` folder of ``output_dir``, verified or not, oldest step first."""
    if not os.path.isdir(output_dir):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := _CHECKPOINT.match(name))]
    return [os.path.join(output_dir, name) for _, name in sorted(found)]


def checkpoints(output_dir: str) -> list[str]:
    """The checkpoints of ``output_dir`` that verify against their manifests, oldest step first."""
    return [folder for folder in candidates(output_dir) if verify(folder) is None]


def folder_size(folder: str) -> int:
    """Bytes in ``folder``'s files (what another checkpoint like it needs on the disk)."""
    return sum(os.path.getsize(os.path.join(folder, name)) for name in _files(folder))


# Weights past this size are a blow-up, not training: initializations draw them around 0.02, LayerNorm's start at 1,
# and a trained encoder's largest are tens. (A checkpoint saved at lr 1e12 held weights of 8.5e11, all finite.)
MAX_SANE_WEIGHT = 1e4
# A logged loss this many times the lowest logged before it is a blow-up under way, not noise.
LOSS_RISE = 2.0


def weights_are_sane(folder: str, bound: float = MAX_SANE_WEIGHT) -> bool:
    """True if every floating tensor of the checkpoint's safetensors weights is finite and no larger than ``bound``
    in absolute value (read without unpickling anything)."""
    from safetensors import safe_open

    files = [name for name in os.listdir(folder) if name.endswith(".safetensors")]
    for name in files:
        with safe_open(os.path.join(folder, name), framework="pt") as weights:
            for key in weights.keys():
                tensor = weights.get_tensor(key)
                if tensor.is_floating_point() and not (tensor.isfinite().all() and tensor.abs().max() <= bound):
                    return False
    return bool(files)


def last_step_before_the_loss_rose(log_history: list[dict], failed_step: int) -> int:
    """The last logged step before the loss became non-finite or rose past :data:`LOSS_RISE` times its lowest
    (or before ``failed_step``, where a non-finite loss was caught); 0 if none."""
    lowest, last = math.inf, 0
    for entry in log_history:
        loss, step = entry.get("loss"), entry.get("step", 0)
        if loss is None:
            continue
        if step >= failed_step or not math.isfinite(loss) or loss > LOSS_RISE * lowest:
            break
        lowest, last = min(lowest, loss), step
    return last


def last_good_before(output_dir: str, log_history: list[dict], failed_step: int) -> str | None:
    """The checkpoint to resume from after a blow-up caught at ``failed_step``: the newest that verifies, whose
    weights are finite and sane (:func:`weights_are_sane`), and that was saved before the loss rose. A logged loss
    averages the steps since the previous log, each computed with the weights before its update, so the weights
    saved at step ``s`` are known good only if a loss logged after ``s + 1`` was: a checkpoint up to one step before
    the last good log qualifies (resuming from a later one would blow up again, and name it again)."""
    limit = last_step_before_the_loss_rose(log_history, failed_step) - 1
    for folder in reversed(checkpoints(output_dir)):
        if int(_CHECKPOINT.match(os.path.basename(folder)).group(1)) <= limit and weights_are_sane(folder):
            return folder
    return None


def last_good_checkpoint(output_dir: str, set_aside: bool = False) -> str | None:
    """The newest checkpoint that verifies. Newer ones that do not are named in the log and, with ``set_aside``
    (the main process, before training), renamed ``bad-checkpoint-<step>`` so that nothing resumes from them: a
    name outside the Trainer's ``checkpoint-*`` rotation, which would otherwise delete it with the old ones."""
    for folder in reversed(candidates(output_dir)):
        problem = verify(folder)
        if problem is None:
            return folder
        if not set_aside:
            logger.warning("%s is not a usable checkpoint (%s); skipping it", folder, problem)
            continue
        target, n = os.path.join(os.path.dirname(folder), "bad-" + os.path.basename(folder)), 1
        while os.path.exists(target):  # an earlier run set this step aside too: keep both
            n += 1
            target = os.path.join(os.path.dirname(folder), f"bad-{n}-{os.path.basename(folder)}")
        os.replace(folder, target)
        logger.warning("%s is not a usable checkpoint (%s); set aside as %s", folder, problem, target)
    return None


# The files of a checkpoint that torch.load reads (the Trainer with weights_only=True): pickles, unlike safetensors.
PICKLED = re.compile(r"^(optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state(_\d+)?\.pth)$")


def unsafe_file_error(checkpoint: str | None) -> HfPretrainError:
    """The one-line error for a checkpoint whose pickled state torch refused to load (an object that is not plain
    tensors and numbers: loading it could run code). Names the file, found by loading each the same safe way."""
    where = checkpoint or "the checkpoint"
    if checkpoint and os.path.isdir(checkpoint):
        for name in sorted(os.listdir(checkpoint)):
            if PICKLED.match(name):
                try:
                    torch.load(os.path.join(checkpoint, name), map_location="cpu", weights_only=True)
                except Exception:  # noqa: BLE001 (any failure names the file)
                    where = os.path.join(checkpoint, name)
                    break
    earlier = [c for c in checkpoints(os.path.dirname(checkpoint)) if c != checkpoint] if checkpoint else []
    other = f"pass --resume_from_checkpoint {earlier[-1]}" if earlier else "resume from another checkpoint"
    return HfPretrainError(
        f"{where}: holds objects other than tensors and numbers, which are not loaded (loading them could run code); "
        f"the file was altered or is not this project's: {other}, or pass --overwrite_output_dir to start afresh"
    )


RUN_SETTINGS = "run_settings.json"


def read_run_settings(checkpoint: str) -> dict | None:
    """The run settings a checkpoint was saved with (None for a checkpoint that has none)."""
    path = os.path.join(checkpoint, RUN_SETTINGS)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class CheckpointManifestCallback(TrainerCallback):
    """Writes a checkpoint's manifest once every process has saved its part of it (RNG states are per process),
    and before it, ``run_settings`` (what the run trains on and what it trains), which a resume compares."""

    def __init__(self, run_settings: dict | None = None) -> None:
        self.run_settings = run_settings

    def on_save(self, args, state, control, **kwargs):
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if args.should_save and os.path.isdir(folder):
            if self.run_settings is not None:
                with open(os.path.join(folder, RUN_SETTINGS), "w", encoding="utf-8") as f:
                    json.dump(self.run_settings, f, indent=1, sort_keys=True, default=str)
            write_manifest(folder)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
