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
import os
import re

import torch
from transformers import TrainerCallback

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


def weights_are_finite(folder: str) -> bool:
    """True if every tensor of the checkpoint's safetensors weights is finite (read without unpickling anything)."""
    from safetensors import safe_open

    files = [name for name in os.listdir(folder) if name.endswith(".safetensors")]
    for name in files:
        with safe_open(os.path.join(folder, name), framework="pt") as weights:
            for key in weights.keys():
                tensor = weights.get_tensor(key)
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    return False
    return bool(files)


def last_finite_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint that verifies and whose weights are all finite: one to resume from after a blow-up."""
    for folder in reversed(checkpoints(output_dir)):
        if weights_are_finite(folder):
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
