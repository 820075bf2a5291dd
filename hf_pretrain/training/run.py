"""The steps every recipe shares around ``Trainer.train()``: logging, the arguments handed to the Trainer, the
checkpoint to resume from, training then evaluation, and a clean end."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import shutil
import time
from collections.abc import Callable, Sequence

import transformers
from transformers import ProgressCallback, Trainer, TrainingArguments

from ..errors import HfPretrainError, disk_full
from ..models.export import export_model
from ..objectives import Objective
from . import checkpoints
from .arguments import RunArguments
from .callbacks import (
    BudgetProgressCallback,
    LearningRateOnResumeCallback,
    NonFiniteLossCallback,
    ProbeCallback,
    SequenceLogCallback,
    TimeBudgetCallback,
    recovery_advice,
)
from .checkpoints import CheckpointManifestCallback
from .data import PretrainingData
from .output_folder import clear_earlier_run
from .preemption import PreemptionCallback
from .schedules import TimeKeyedMultiplier, time_keyed_schedule
from .streaming import StreamPositionCallback
from .trainer import PretrainingTrainer

logger = logging.getLogger(__name__)


def configure_logging(args: TrainingArguments) -> None:
    """Our INFO lines on the process that logs, warnings elsewhere; transformers at its own configured level."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if args.should_log else logging.WARNING,
    )
    transformers.utils.logging.set_verbosity(args.get_process_log_level())


def training_args_for_trainer(
    args: TrainingArguments, count_tokens: bool = False, keep_columns: bool = False, **overrides
) -> TrainingArguments:
    """A copy of ``args`` to hand to ``Trainer``.

    It never pushes by itself (the recipes push the final folder with our model card) and holds no Hub token,
    since the Trainer pickles its arguments into every checkpoint. With ``count_tokens`` it counts non-padding
    tokens, which the logs (``train_tokens_per_second``) and the model card report. With ``keep_columns`` every
    dataset column reaches the collator (it keys masks by ``sequence_id``), and the change is logged.
    """
    counting = args.include_num_input_tokens_seen
    if count_tokens and counting in ("no", False):
        counting = "non_padding"
    if keep_columns and args.remove_unused_columns:
        logger.info("remove_unused_columns=False: the collator keys each batch's masks by its sequence_id column")
        overrides["remove_unused_columns"] = False
    return dataclasses.replace(
        args, push_to_hub=False, hub_token=None, include_num_input_tokens_seen=counting, **overrides
    )


def run_settings(*argument_objects) -> dict:
    """What a run trains on and what it trains: every field of the data, model and objective arguments. A resume
    compares them with the checkpoint's (:func:`check_resume`)."""
    settings = {}
    for arguments in argument_objects:
        if arguments is not None:
            settings.update({k: v for k, v in dataclasses.asdict(arguments).items() if k not in RESUMABLE_CHANGES})
    return json.loads(json.dumps(settings, default=str))


# Settings a resumed run may change: where and how fast the data is read, and how bad lines are treated.
RESUMABLE_CHANGES = ("preprocessing_num_workers", "on_bad_input", "trust_remote_code", "use_safetensors",
                     "attn_implementation")


# How a global batch is made. Each optimizer step trains the next `global batch` sequences of the data order,
# whatever the layout (accelerate hands process p the p-th of every world-size batches): a resume may change the
# layout, not the product.
BATCH_LAYOUT = ("per_device_train_batch_size", "gradient_accumulation_steps", "world_size")


def batch_layout(args: TrainingArguments) -> dict:
    """The run's batch layout, recorded with its settings (:func:`check_resume` compares them)."""
    return {name: getattr(args, name) for name in BATCH_LAYOUT}


def _layout(settings: dict) -> str:
    return (f"{settings['per_device_train_batch_size']} sequences per device x "
            f"{settings['gradient_accumulation_steps']} accumulation steps x {settings['world_size']} process(es)")


def _global_batch(settings: dict) -> int:
    return (settings["per_device_train_batch_size"] * settings["gradient_accumulation_steps"]
            * settings["world_size"])


def keep_global_batch(checkpoint: str, saved: dict, args: TrainingArguments) -> None:
    """Resume ``checkpoint`` (trained with the layout ``saved``) with this run's processes and per-device batch:
    the same global batch, hence the same data order, by adjusting ``--gradient_accumulation_steps`` (elastic
    resume); or refuse in one line saying what to pass, when no accumulation gives that batch."""
    target, now = _global_batch(saved), batch_layout(args)
    per_micro_step = args.per_device_train_batch_size * args.world_size
    if _global_batch(now) == target:
        if now != {k: saved[k] for k in BATCH_LAYOUT}:
            logger.info("resuming %s with %s (it was trained with %s): the same global batch of %d sequences, so the "
                        "data order continues", checkpoint, _layout(now), _layout(saved), target)
        return
    if target % per_micro_step == 0:
        accumulation = target // per_micro_step
        logger.warning("resuming %s with --gradient_accumulation_steps %d instead of %d: %d sequences per device x %d "
                       "process(es) then make its global batch of %d sequences (%s), so the data order continues",
                       checkpoint, accumulation, args.gradient_accumulation_steps, args.per_device_train_batch_size,
                       args.world_size, target, _layout(saved))
        args.gradient_accumulation_steps = accumulation
        return
    if target % args.world_size == 0:
        per_process = target // args.world_size
        batch = max(d for d in range(1, min(per_process, args.per_device_train_batch_size) + 1) if per_process % d == 0)
        advice = (f"pass --per_device_train_batch_size {batch} (with --gradient_accumulation_steps "
                  f"{per_process // batch} it makes {target})")
    else:
        advice = f"resume on a number of processes that divides {target}"
    raise HfPretrainError(
        f"{checkpoint} was trained with a global batch of {target} sequences ({_layout(saved)}); "
        f"{args.per_device_train_batch_size} sequences per device x {args.world_size} process(es) cannot make it, so "
        f"resuming would change which sequences each step trains (some twice, some never): {advice}, or pass "
        "--overwrite_output_dir to start afresh"
    )


def check_resume(checkpoint: str | None, settings: dict, args: TrainingArguments | None = None) -> None:
    """Refuse, in one line, to resume a checkpoint of another run (a different corpus, model or objective). With
    ``args``, a resume with another batch layout keeps the checkpoint's global batch (:func:`keep_global_batch`)
    and ``settings`` records the layout it then runs with."""
    if checkpoint is None:
        return
    saved = checkpoints.read_run_settings(checkpoint)
    if saved is None:
        logger.warning("%s records no run settings (an older or foreign checkpoint): resuming without checking them",
                       checkpoint)
        return
    if args is not None and all(k in saved for k in BATCH_LAYOUT):
        keep_global_batch(checkpoint, saved, args)
        settings.update(batch_layout(args))
    changed = sorted(k for k in set(saved) | set(settings)
                     if k not in BATCH_LAYOUT and saved.get(k) != settings.get(k))
    if changed:
        differences = "; ".join(f"--{k} {saved.get(k)!r} then, {settings.get(k)!r} now" for k in changed[:4])
        explicit = args is not None and args.resume_from_checkpoint
        advice = ("drop --resume_from_checkpoint to start afresh" if explicit else
                  "pass --overwrite_output_dir to start afresh in this folder, or choose another --output_dir")
        raise HfPretrainError(f"{checkpoint} belongs to another run ({differences}): resume with the same settings, "
                              f"or {advice}")


def resume_checkpoint(args: TrainingArguments, overwrite_output_dir: bool = False) -> str | None:
    """The checkpoint to resume from: ``--resume_from_checkpoint`` (verified), else the newest checkpoint of
    ``--output_dir`` that verifies against its manifest (newer ones that do not are set aside and named), unless
    ``--overwrite_output_dir`` asks for a fresh start."""
    if args.resume_from_checkpoint:
        if not os.path.isdir(args.resume_from_checkpoint):
            raise HfPretrainError(f"--resume_from_checkpoint {args.resume_from_checkpoint}: no such checkpoint directory")
        folder = args.resume_from_checkpoint
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
    if overwrite_output_dir:
        if args.process_index == 0:
            clear_earlier_run(args.output_dir)
        return None
    found = checkpoints.last_good_checkpoint(args.output_dir, set_aside=args.process_index == 0)
    if found:
        logger.info("resuming from %s, the last checkpoint in --output_dir", found)
    return found


# transformers' schedule names and the time-keyed shape each one is.
TIME_KEYED_SHAPES = {"linear": "linear", "cosine": "cosine", "constant": "constant",
                     "constant_with_warmup": "constant", "warmup_stable_decay": "warmup_stable_decay"}


def time_keyed_multiplier(training_args: TrainingArguments, run_args: RunArguments) -> TimeKeyedMultiplier:
    """``--lr_scheduler_type``'s shape over the ``--max_train_minutes`` budget, warmup a fraction of it."""
    name = getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type)
    if name not in TIME_KEYED_SHAPES:
        raise HfPretrainError(
            f"--lr_schedule_clock time runs the {', '.join(TIME_KEYED_SHAPES)} schedules, not --lr_scheduler_type {name}"
        )
    warmup = training_args.warmup_steps or 0
    if warmup >= 1:
        raise HfPretrainError(
            f"--lr_schedule_clock time: give --warmup_steps as a fraction of the time budget (< 1), not {warmup}"
        )
    return TimeKeyedMultiplier(run_args.max_train_minutes * 60, TIME_KEYED_SHAPES[name], warmup,
                               run_args.decay_ratio, run_args.min_lr_ratio)


def pretraining_trainer(
    objective: Objective, model, data: PretrainingData, training_args: TrainingArguments, run_args: RunArguments,
    settings: dict | None = None, probes: Sequence[Callable] = (), probe_every: int = 500,
) -> PretrainingTrainer:
    """The Trainer of a pretraining run: the objective's collator and step metrics, the validation split if any,
    and the run's callbacks (manifests on every checkpoint, non-finite losses, time budget, sequence log, and
    ``probes`` of the current weights every ``probe_every`` steps)."""
    has_eval = "validation" in data.sequences
    if not has_eval and training_args.eval_strategy != "no":
        raise HfPretrainError(
            f"--eval_strategy {training_args.eval_strategy.value} needs a validation split, and this run has none "
            "(--validation_split_percentage 0, or no validation documents): pass --eval_strategy no or a "
            "--validation_file"
        )
    multiplier = time_keyed_multiplier(training_args, run_args) if run_args.lr_schedule_clock == "time" else None
    overrides = streaming_overrides(training_args) if data.streamed else {}
    trainer = PretrainingTrainer(
        model=model,
        # Evaluation reports the loss and the counted step metrics: the logits themselves are never gathered.
        # Counting tokens is a read per micro-batch (the Trainer's own): kept unless the run reads the device
        # only every --host_sync_steps, where --include_num_input_tokens_seen still asks for it.
        args=training_args_for_trainer(training_args, count_tokens=run_args.host_sync_steps == 1, keep_columns=True,
                                       prediction_loss_only=True, **overrides),
        train_dataset=data.sequences["train"],
        eval_dataset=data.sequences["validation"] if has_eval else None,
        data_collator=objective.collator(data.tokenizer),
        processing_class=data.tokenizer,
        step_metrics=objective.step_metrics(),
        lr_schedule=(lambda optimizer: time_keyed_schedule(optimizer, multiplier)) if multiplier else None,
    )
    warn_if_fsdp_ignored(trainer)
    if data.streamed:  # before the manifest: a complete checkpoint holds every process's stream position
        trainer.add_callback(StreamPositionCallback(trainer.step_batches))
    trainer.add_callback(CheckpointManifestCallback(settings))
    every = run_args.host_sync_steps
    trainer.add_callback(NonFiniteLossCallback(trainer.step_batches, run_args.on_nonfinite_loss, every,
                                               run_args.max_nonfinite_skips))
    trainer.add_callback(LearningRateOnResumeCallback())
    trainer.add_callback(PreemptionCallback(every))
    if run_args.max_train_minutes:
        budget = TimeBudgetCallback(run_args.max_train_minutes, multiplier, every=every)
        trainer.add_callback(budget)
        if not training_args.disable_tqdm:  # the bar in minutes of the budget, after the budget's own step end
            trainer.remove_callback(ProgressCallback)
            trainer.add_callback(BudgetProgressCallback(budget))
    if run_args.log_sequence_ids:
        folder = os.path.join(training_args.output_dir, "sequence_ids")
        trainer.add_callback(SequenceLogCallback(trainer.step_batches, folder))
    if probes:
        trainer.add_callback(ProbeCallback(trainer, probes, probe_every))
    return trainer


def streaming_overrides(args: TrainingArguments) -> dict:
    """What a streamed run changes in the Trainer's arguments: each process reads its own shards (accelerate
    would otherwise read the stream on the main process and send the batches), and a resume starts the stream after
    its saved position instead of reading the trained batches again to skip them."""
    config = args.accelerator_config
    config = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})
    return {"accelerator_config": {**config, "dispatch_batches": False}, "ignore_data_skip": True}


def warn_if_fsdp_ignored(trainer: Trainer) -> None:
    """An accelerate config that asks for FSDP on a machine without GPUs runs as DDP (accelerate enables FSDP on
    accelerator devices only), every parameter replicated: said, rather than left for the memory to find out."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and not trainer.is_fsdp_enabled:
        logger.warning("the accelerate config asks for FSDP, but accelerate enables it on GPUs (and other "
                       "accelerators) only: this run is %s, with every parameter replicated on each process",
                       trainer.accelerator.distributed_type.value)


def train_and_evaluate(trainer: Trainer, checkpoint: str | None) -> dict[str, float]:
    """Train (resuming from ``checkpoint``), save the trainer state, then evaluate once if there is a validation
    set; logs and saves both sets of metrics and returns the evaluation's. Saving the model is the caller's.

    A run stopped by SIGTERM or SIGINT (:class:`.preemption.PreemptionCallback`) has saved a checkpoint of its
    last step; it ends here, on every process, with :class:`~hf_pretrain.errors.Interrupted`."""
    try:
        result = trainer.train(resume_from_checkpoint=checkpoint)
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, PreemptionCallback) and callback.stopped_at is not None:
                finish(trainer)
                callback.raise_if_stopped(trainer.args.output_dir)
        trainer.save_state()
    except pickle.UnpicklingError:  # torch's weights_only load refused a file of the checkpoint's
        raise checkpoints.unsafe_file_error(checkpoint) from None
    except Exception as err:
        error = _disk_full_error(err, trainer.args.output_dir)
        if error is None:
            raise
        raise error from None
    check_final_weights(trainer)
    trainer.log_metrics("train", result.metrics)
    if trainer.eval_dataset is None:
        return {}
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    return metrics


def save_model(trainer: Trainer, output_dir: str) -> list[str]:
    """Save the trained model as the stock folder(s) it exports (:func:`~hf_pretrain.models.export.export_model`),
    each with the tokenizer, and return them. Every process calls this: under FSDP or DeepSpeed, gathering the
    state dict is a collective."""
    state = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.args.should_save:
        return []
    folders = export_model(trainer.accelerator.unwrap_model(trainer.model), output_dir, state)
    for folder in folders:
        trainer.processing_class.save_pretrained(folder)
    return folders


def check_final_weights(trainer: Trainer) -> None:
    """Never save non-finite weights as the trained model (``--on_nonfinite_loss skip`` can end a run on them)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if all(p.isfinite().all() for p in model.parameters() if p.is_floating_point()):
        return
    last = checkpoints.last_good_before(trainer.args.output_dir, trainer.state.log_history, trainer.state.global_step)
    raise HfPretrainError(f"the trained weights hold NaN or infinite values, so they are not saved as the model in "
                          f"{trainer.args.output_dir}. {recovery_advice(last)}")


def _disk_full_error(err: Exception, output_dir: str) -> HfPretrainError | None:
    """The one-line error for a checkpoint that did not fit on the disk (None if ``err`` is something else): the
    partial checkpoint has no manifest, so a rerun sets it aside and resumes from the last complete one."""
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


# The training hyperparameters a run report lists (never a token or a path to one).
REPORTED_TRAINING_ARGS = ("learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "adam_beta1",
                          "adam_beta2", "adam_epsilon", "max_grad_norm", "per_device_train_batch_size",
                          "gradient_accumulation_steps", "max_steps", "num_train_epochs", "bf16", "fp16", "seed")


def training_summary(args: TrainingArguments, run_args: RunArguments | None = None) -> dict:
    """The hyperparameters of a run, for its report: these training arguments, the world size and the budget."""
    summary = {name: getattr(getattr(args, name), "value", getattr(args, name)) for name in REPORTED_TRAINING_ARGS}
    summary["world_size"] = args.world_size
    if run_args is not None:
        summary.update(max_train_minutes=run_args.max_train_minutes, lr_schedule_clock=run_args.lr_schedule_clock)
    return summary


def finish(trainer: Trainer) -> None:
    """End the run cleanly on every process: wait for the main one's last writes, then close the process group.

    gloo frees each finished collective on its worker thread, and freeing one needs the GIL. The group itself is
    torn down when the DDP model is freed, joining those threads while this one holds the GIL: if a worker is still
    freeing the last collective then, the process hangs (seen: ``~ProcessGroupGloo`` joining a worker stuck in
    ``~AsyncBarrierWork``) or aborts ("terminate called without an active exception"). A pause after the last
    collective lets the workers finish first."""
    trainer.accelerator.wait_for_everyone()
    if trainer.args.world_size > 1:
        time.sleep(0.5)
    trainer.accelerator.end_training()
