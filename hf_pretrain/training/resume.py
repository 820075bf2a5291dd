"""Resuming a run, owned in one place (in the spirit of torchtitan's ``CheckpointManager``): which checkpoint to
resume (the one named, else the newest of ``--output_dir`` that verifies), whether it is this run's (the settings
it was saved with), how to keep its global batch on another layout (elastic resume), what each new checkpoint
records, and the one-line advice when a save or a load fails. The checkpoint files themselves (manifests,
verification, the last good one) are :mod:`.checkpoints`'."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import shutil

from transformers import TrainingArguments

from ..errors import HfPretrainError, disk_full
from . import checkpoints
from .checkpoints import CheckpointManifestCallback
from .output_folder import clear_earlier_run

logger = logging.getLogger(__name__)

# Settings a resumed run may change: where and how fast the data is read, and how bad lines are treated.
RESUMABLE_CHANGES = ("preprocessing_num_workers", "on_bad_input", "trust_remote_code", "use_safetensors",
                     "attn_implementation")

# How a global batch is made. Each optimizer step trains the next `global batch` sequences of the data order,
# whatever the layout (accelerate hands process p the p-th of every world-size batches): a resume may change the
# layout, not the product.
BATCH_LAYOUT = ("per_device_train_batch_size", "gradient_accumulation_steps", "world_size")


def run_settings(*argument_objects) -> dict:
    """What a run trains on and what it trains: every field of the data, model and objective arguments (but the
    :data:`RESUMABLE_CHANGES`), as JSON values."""
    settings = {}
    for arguments in argument_objects:
        if arguments is not None:
            settings.update({k: v for k, v in dataclasses.asdict(arguments).items() if k not in RESUMABLE_CHANGES})
    return json.loads(json.dumps(settings, default=str))


def batch_layout(args: TrainingArguments) -> dict:
    """The run's batch layout, recorded with its settings."""
    return {name: getattr(args, name) for name in BATCH_LAYOUT}


class CheckpointManager:
    """The checkpoints of one run: ``resume()`` before any data work, ``callback()`` for its Trainer (each
    checkpoint then records ``settings`` and a manifest), ``error()`` for a failure while training.

    ``settings`` are :func:`run_settings` of the run's arguments; the batch layout is added here."""

    def __init__(self, args: TrainingArguments, settings: dict, overwrite_output_dir: bool = False) -> None:
        self.args = args
        self.settings = {**settings, **batch_layout(args)}
        self.overwrite_output_dir = overwrite_output_dir
        self.checkpoint: str | None = None

    def resume(self) -> str | None:
        """The checkpoint to resume from, checked to be this run's (its global batch kept), or None for a fresh
        start; with ``--overwrite_output_dir`` an earlier run's checkpoints are removed first."""
        self.checkpoint = self.find()
        self.check(self.checkpoint)
        return self.checkpoint

    def find(self) -> str | None:
        """``--resume_from_checkpoint`` (verified), else the newest checkpoint of ``--output_dir`` that verifies
        against its manifest (newer ones that do not are set aside and named), unless ``--overwrite_output_dir``."""
        args = self.args
        if args.resume_from_checkpoint:
            return _named_checkpoint(args.resume_from_checkpoint)
        if self.overwrite_output_dir:
            if args.process_index == 0:
                clear_earlier_run(args.output_dir)
            return None
        found = checkpoints.last_good_checkpoint(args.output_dir, set_aside=args.process_index == 0)
        if found:
            logger.info("resuming from %s, the last checkpoint in --output_dir", found)
        return found

    def check(self, checkpoint: str | None) -> None:
        """Refuse, in one line, to resume a checkpoint of another run (a different corpus, model or objective);
        a resume with another batch layout keeps the checkpoint's global batch (:meth:`keep_global_batch`)."""
        if checkpoint is None:
            return
        saved = checkpoints.read_run_settings(checkpoint)
        if saved is None:
            logger.warning("%s records no run settings (an older or foreign checkpoint): resuming without checking "
                           "them", checkpoint)
            return
        if all(k in saved for k in BATCH_LAYOUT):
            self.keep_global_batch(checkpoint, saved)
            self.settings.update(batch_layout(self.args))
        changed = sorted(k for k in set(saved) | set(self.settings)
                         if k not in BATCH_LAYOUT and saved.get(k) != self.settings.get(k))
        if changed:
            differences = "; ".join(f"--{k} {saved.get(k)!r} then, {self.settings.get(k)!r} now" for k in changed[:4])
            advice = ("drop --resume_from_checkpoint to start afresh" if self.args.resume_from_checkpoint else
                      "pass --overwrite_output_dir to start afresh in this folder, or choose another --output_dir")
            raise HfPretrainError(f"{checkpoint} belongs to another run ({differences}): resume with the same "
                                  f"settings, or {advice}")

    def keep_global_batch(self, checkpoint: str, saved: dict) -> None:
        """Resume ``checkpoint`` (trained with the layout ``saved``) with this run's processes and per-device
        batch: the same global batch, hence the same data order, by adjusting ``--gradient_accumulation_steps``
        (elastic resume); or refuse in one line saying what to pass, when no accumulation gives that batch."""
        args = self.args
        target, now = _global_batch(saved), batch_layout(args)
        per_micro_step = args.per_device_train_batch_size * args.world_size
        if _global_batch(now) == target:
            if now != {k: saved[k] for k in BATCH_LAYOUT}:
                logger.info("resuming %s with %s (it was trained with %s): the same global batch of %d sequences, so "
                            "the data order continues", checkpoint, _layout(now), _layout(saved), target)
            return
        if target % per_micro_step == 0:
            accumulation = target // per_micro_step
            logger.warning("resuming %s with --gradient_accumulation_steps %d instead of %d: %d sequences per device "
                           "x %d process(es) then make its global batch of %d sequences (%s), so the data order "
                           "continues", checkpoint, accumulation, args.gradient_accumulation_steps,
                           args.per_device_train_batch_size, args.world_size, target, _layout(saved))
            args.gradient_accumulation_steps = accumulation
            return
        if target % args.world_size == 0:
            per_process = target // args.world_size
            batch = max(d for d in range(1, min(per_process, args.per_device_train_batch_size) + 1)
                        if per_process % d == 0)
            advice = (f"pass --per_device_train_batch_size {batch} (with --gradient_accumulation_steps "
                      f"{per_process // batch} it makes {target})")
        else:
            advice = f"resume on a number of processes that divides {target}"
        raise HfPretrainError(
            f"{checkpoint} was trained with a global batch of {target} sequences ({_layout(saved)}); "
            f"{args.per_device_train_batch_size} sequences per device x {args.world_size} process(es) cannot make "
            f"it, so resuming would change which sequences each step trains (some twice, some never): {advice}, or "
            "pass --overwrite_output_dir to start afresh"
        )

    def callback(self) -> CheckpointManifestCallback:
        """The Trainer callback that completes each checkpoint: the settings a resume compares, then the manifest."""
        return CheckpointManifestCallback(self.settings)

    def error(self, err: Exception) -> HfPretrainError | None:
        """The one-line error for a failure while training that is the checkpoints' (None for any other): a resumed
        checkpoint whose pickled state torch refused, or a checkpoint that did not fit on the disk (the partial one
        has no manifest, so a rerun sets it aside and resumes from the last complete one)."""
        if isinstance(err, pickle.UnpicklingError):  # torch's weights_only load refused a file of the checkpoint's
            return checkpoints.unsafe_file_error(self.checkpoint)
        output_dir = self.args.output_dir
        complete = checkpoints.checkpoints(output_dir)
        needed = max(64 * 2**20, checkpoints.folder_size(complete[-1])) if complete else 64 * 2**20
        if not disk_full(err, output_dir, needed):
            return None
        free = shutil.disk_usage(output_dir).free / 2**20
        resume = f"it resumes from {complete[-1]}" if complete else "no checkpoint was complete, so it starts afresh"
        return HfPretrainError(
            f"--output_dir {output_dir}: no space left on the device while saving ({free:.0f} MiB free): free some "
            f"space (or lower --save_total_limit) and rerun the same command; {resume}"
        )


def _named_checkpoint(folder: str) -> str:
    """``--resume_from_checkpoint folder``, refused in one line unless it is a complete training checkpoint."""
    if not os.path.isdir(folder):
        raise HfPretrainError(f"--resume_from_checkpoint {folder}: no such checkpoint directory")
    inside = checkpoints.checkpoints(folder)
    if not os.path.isfile(os.path.join(folder, "trainer_state.json")):
        if inside:
            raise HfPretrainError(f"--resume_from_checkpoint {folder}: a run's --output_dir, not one checkpoint: "
                                  f"pass --resume_from_checkpoint {inside[-1]} (its newest complete checkpoint)")
        hint = ("to continue pretraining a saved model, pass --model_name_or_path" if os.listdir(folder)
                else "the folder is empty: pass a checkpoint-<step> folder a run saved")
        raise HfPretrainError(f"--resume_from_checkpoint {folder}: not a training checkpoint (no "
                              f"trainer_state.json); {hint}")
    if not any(os.path.isfile(os.path.join(folder, f)) for f in (checkpoints.MANIFEST, "optimizer.pt")):
        # A run's final folder: its weights and state, but no optimizer or scheduler, so the schedule would
        # silently start over at the peak learning rate.
        raise HfPretrainError(
            f"--resume_from_checkpoint {folder}: a saved model, not a training checkpoint (no optimizer or "
            f"scheduler state): {f'resume from {inside[-1]}, or ' if inside else ''}pass --model_name_or_path "
            f"{folder} to continue pretraining its weights with a new schedule"
        )
    problem = checkpoints.verify(folder)
    if problem:
        raise HfPretrainError(f"--resume_from_checkpoint {folder}: {problem}")
    missing = [name for name in ("optimizer.pt", "scheduler.pt") if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        logger.warning("%s has no %s: the optimizer starts afresh and the learning-rate schedule from its beginning",
                       folder, " or ".join(missing))
    return folder


def _layout(settings: dict) -> str:
    return (f"{settings['per_device_train_batch_size']} sequences per device x "
            f"{settings['gradient_accumulation_steps']} accumulation steps x {settings['world_size']} process(es)")


def _global_batch(settings: dict) -> int:
    return (settings["per_device_train_batch_size"] * settings["gradient_accumulation_steps"]
            * settings["world_size"])
