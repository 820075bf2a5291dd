"""A pretraining run around ``Trainer.train()``: its Trainer (the objective's collator and metrics, the run's
callbacks, a time-keyed schedule), training then evaluation, and the trained model saved as stock folders."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence

from transformers import ProgressCallback, Trainer, TrainingArguments

from ..errors import HfPretrainError
from ..models.export import export_model
from ..objectives import Objective
from ..runtime.process import compiled_regions, finish, training_args_for_trainer
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
from .checkpoints import CheckpointManifestCallback, last_good_before
from .data import PretrainingData
from .preemption import PreemptionCallback
from .resume import CheckpointManager
from .schedules import TimeKeyedMultiplier, time_keyed_schedule
from .streaming import StreamPositionCallback
from .trainer import PretrainingTrainer

logger = logging.getLogger(__name__)


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
    checkpoints: CheckpointManager | None = None, probes: Sequence[Callable] = (), probe_every: int = 500,
) -> PretrainingTrainer:
    """The Trainer of a pretraining run: the objective's collator and step metrics, the validation split if any,
    and the run's callbacks (``checkpoints``' settings and manifest on every checkpoint, non-finite losses, time
    budget, sequence log, and ``probes`` of the current weights every ``probe_every`` steps)."""
    has_eval = "validation" in data.sequences
    if not has_eval and training_args.eval_strategy != "no":
        raise HfPretrainError(
            f"--eval_strategy {training_args.eval_strategy.value} needs a validation split, and this run has none "
            "(--validation_split_percentage 0, or no validation documents): pass --eval_strategy no or a "
            "--validation_file"
        )
    multiplier = time_keyed_multiplier(training_args, run_args) if run_args.lr_schedule_clock == "time" else None
    overrides = streaming_overrides(training_args) if data.streamed else {}
    with compiled_regions(run_args.torch_compile_regions):  # read as the Trainer builds its accelerator
        trainer = PretrainingTrainer(
            model=model,
            # Evaluation reports the loss and the counted step metrics: the logits themselves are never gathered.
            # Counting tokens is a read per micro-batch (the Trainer's own): kept unless the run reads the device
            # only every --host_sync_steps, where --include_num_input_tokens_seen still asks for it.
            args=training_args_for_trainer(training_args, count_tokens=run_args.host_sync_steps == 1,
                                           keep_columns=True, prediction_loss_only=True, **overrides),
            train_dataset=data.sequences["train"],
            eval_dataset=data.sequences["validation"] if has_eval else None,
            data_collator=objective.collator(data.tokenizer),
            processing_class=data.tokenizer,
            step_metrics=objective.step_metrics(),
            lr_schedule=(lambda optimizer: time_keyed_schedule(optimizer, multiplier)) if multiplier else None,
            use_muon=run_args.use_muon,
        )
    warn_if_fsdp_ignored(trainer)
    if run_args.use_muon and (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled):
        # Muon orthogonalizes each matrix whole; a shard's orthogonalization is not the matrix's.
        raise HfPretrainError("--use_muon needs every weight matrix whole on each process (one process or DDP): this "
                              "run shards them with " + ("FSDP" if trainer.is_fsdp_enabled else "DeepSpeed")
                              + "; drop --use_muon or use the DDP accelerate config")
    if data.streamed:  # before the manifest: a complete checkpoint holds every process's stream position
        trainer.add_callback(StreamPositionCallback(trainer.step_batches))
    trainer.add_callback(checkpoints.callback() if checkpoints else CheckpointManifestCallback())
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


def train_and_evaluate(trainer: Trainer, checkpoints: CheckpointManager) -> dict[str, float]:
    """Train (resuming from the checkpoint ``checkpoints`` found), save the trainer state, then evaluate once if
    there is a validation set; logs and saves both sets of metrics and returns the evaluation's. Saving the model
    is the caller's. A failure that is the checkpoints' (a refused pickle, a full disk) is their one-line error.

    A run stopped by SIGTERM or SIGINT (:class:`.preemption.PreemptionCallback`) has saved a checkpoint of its
    last step; it ends here, on every process, with :class:`~hf_pretrain.errors.Interrupted`."""
    try:
        result = trainer.train(resume_from_checkpoint=checkpoints.checkpoint)
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, PreemptionCallback) and callback.stopped_at is not None:
                finish(trainer)
                callback.raise_if_stopped(trainer.args.output_dir)
        trainer.save_state()
    except Exception as err:
        error = checkpoints.error(err)
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
    last = last_good_before(trainer.args.output_dir, trainer.state.log_history, trainer.state.global_step)
    raise HfPretrainError(f"the trained weights hold NaN or infinite values, so they are not saved as the model in "
                          f"{trainer.args.output_dir}. {recovery_advice(last)}")
