"""Glue between our pieces and the stock ``transformers.Trainer``: training metrics, time budget, exact resume,
crash-safe checkpoints and non-finite losses."""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import time

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME

from . import checkpointing
from .data_order import ResumableSampler
from .errors import HfPretrainError
from .masking import IGNORE_INDEX, derive_seed

logger = logging.getLogger(__name__)
DROPOUT_STREAM = 2**32 + 2  # keeps dropout's seeds apart from the masks' (keyed by sequence ids)


class StepMetrics:
    """What a pretraining objective counts at each step, and how counts become logged metrics.

    ``count`` returns a 1-D tensor of sums for one batch (on the batch's device, no synchronisation); the trainer
    adds them up between logging steps, sums them over processes, and ``summarize`` turns the totals into metrics.
    """

    names: tuple[str, ...] = ()

    def count(self, outputs, inputs) -> torch.Tensor:
        raise NotImplementedError

    def summarize(self, totals: list[float]) -> dict[str, float]:
        raise NotImplementedError


class MaskedLMMetrics(StepMetrics):
    """MLM accuracy over the selected tokens and, for BertForPreTraining, NSP accuracy."""

    names = ("mlm_correct", "mlm_selected", "nsp_correct", "nsp_total")

    def count(self, outputs, inputs) -> torch.Tensor:
        logits = outputs["prediction_logits"] if "prediction_logits" in outputs else outputs["logits"]
        labels = inputs["labels"]
        selected = labels != IGNORE_INDEX
        predictions = logits.argmax(-1)
        if predictions.dim() == 2:  # full logits; sparse prediction gives the masked positions alone
            predictions = predictions[selected]
        counts = [(predictions == labels[selected]).sum(), selected.sum()]
        if "next_sentence_label" in inputs:
            nsp = inputs["next_sentence_label"]
            counts += [(outputs["seq_relationship_logits"].argmax(-1) == nsp).sum(), torch.tensor(nsp.numel())]
        else:
            counts += [torch.tensor(0), torch.tensor(0)]
        return torch.stack([c.to(labels.device, torch.float64) for c in counts])

    def summarize(self, totals: list[float]) -> dict[str, float]:
        metrics = {}
        if totals[1]:
            metrics["mlm_accuracy"] = totals[0] / totals[1]
        if totals[3]:
            metrics["nsp_accuracy"] = totals[2] / totals[3]
        return metrics


class PretrainingTrainer(Trainer):
    """``Trainer`` for pretraining: it logs an objective's own metrics (``step_metrics``) and tokens/s, and makes
    runs survive being killed.

    - **Exact resume.** Training sequences carry a ``sequence_id``; their order is a :class:`ResumableSampler`
      (a permutation per (seed, epoch)), the collator keys each batch's masks by its sequence ids, and dropout is
      reseeded from (seed, step, micro-batch, rank) before every forward pass. A resumed run therefore sees the
      same batches, masks and dropout as an uninterrupted one, and it seeks to its data position instead of
      replaying the batches before it.
    - **Crash-safe checkpoints**, written in a staging folder and published by one rename (:mod:`checkpointing`);
      ``save_total_limit`` retires old ones the same way.
    - **Non-finite losses** are caught at the step they happen (all processes agree): ``on_nonfinite_loss="stop"``
      raises an error naming the step and the batch's sequences, before the optimizer applies anything, so the
      last checkpoint stays the last good state; ``"skip"`` drops that optimizer step and goes on.
    - ``sequence_log``: a folder where each process appends the sequence ids of every batch it trains on.

    The loss is the model's own; the metrics only read the outputs it already computed.
    """

    def __init__(
        self,
        *args,
        step_metrics: StepMetrics | None = None,
        on_nonfinite_loss: str = "stop",
        sequence_log: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Columns reach the collator whole (sequence_id included), and Trainer's batch-by-batch skipping on resume
        # is off: the sampler seeks instead (_init_training_state).
        self.args.remove_unused_columns = False
        self.args.ignore_data_skip = True
        if on_nonfinite_loss not in ("stop", "skip"):
            raise ValueError(f"on_nonfinite_loss must be 'stop' or 'skip', not {on_nonfinite_loss!r}")
        self.step_metrics = step_metrics or MaskedLMMetrics()
        self.on_nonfinite_loss = on_nonfinite_loss
        self.sequence_log = sequence_log
        size = len(self.step_metrics.names)
        self._counts = {
            mode: torch.zeros(size, dtype=torch.float64, device=self.args.device) for mode in ("train", "eval")
        }
        self._last_log: tuple[float, int] | None = None  # (time, tokens seen) at the previous training log
        self._train_sampler: ResumableSampler | None = None
        self._micro_batch = (-1, 0)  # (global step, micro-batches trained at that step)
        self._drop_update = False
        self._staging: str | None = None
        forward = inspect.signature(self.accelerator.unwrap_model(self.model).forward).parameters
        self._model_takes_sequence_ids = "sequence_id" in forward
        self.add_callback(_DropSkippedUpdate(self))

    # --- data order and exact resume -------------------------------------------------------------------------

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        # Whole global batches only, so that processes split every batch the same way before and after a resume.
        self._train_sampler = ResumableSampler(
            len(dataset), seed, batch_size=self.args.per_device_train_batch_size * self.args.world_size
        )
        return self._train_sampler

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial):
        # Trainer's own resume would skip the trained batches one by one (off: ignore_data_skip); the sampler seeks
        # to the same position directly instead.
        epochs_trained, _ = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        if resume_from_checkpoint is not None and self._train_sampler is not None:
            steps_in_epoch = self.state.global_step - epochs_trained * num_update_steps_per_epoch
            samples_per_step = (
                self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
            )
            self._train_sampler.resume(epochs_trained, steps_in_epoch * samples_per_step)
            logger.info("resuming at epoch %d, sample %d of its order (no replay)", epochs_trained,
                        steps_in_epoch * samples_per_step)
        return epochs_trained, 0

    def training_step(self, model, inputs, num_items_in_batch=None):
        step, micro = self._micro_batch
        micro = micro + 1 if step == self.state.global_step else 0
        self._micro_batch = (self.state.global_step, micro)
        # Dropout draws from the global generator: keyed by the step, it no longer depends on the run's history.
        torch.manual_seed(
            derive_seed(DROPOUT_STREAM, self.args.seed, self.state.global_step, micro, self.args.process_index)
        )
        sequence_ids = inputs.get("sequence_id")
        if self.sequence_log and sequence_ids is not None:
            self._log_sequences(sequence_ids)
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not self._all_finite(loss):
            return self._nonfinite(loss, sequence_ids)
        return loss

    def _log_sequences(self, sequence_ids: torch.Tensor) -> None:
        os.makedirs(self.sequence_log, exist_ok=True)
        path = os.path.join(self.sequence_log, f"rank-{self.args.process_index}.jsonl")
        record = {"step": self.state.global_step + 1, "micro_batch": self._micro_batch[1],
                  "sequence_ids": sequence_ids.tolist()}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    # --- non-finite losses -------------------------------------------------------------------------------------

    def _all_finite(self, loss: torch.Tensor) -> bool:
        finite = torch.isfinite(loss.detach()).float().reshape(1).to(self.args.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def _nonfinite(self, loss: torch.Tensor, sequence_ids: torch.Tensor | None) -> torch.Tensor:
        step = self.state.global_step + 1
        ids = "" if sequence_ids is None else f"sequence ids {sequence_ids.tolist()[:16]}"
        value = loss.item()
        if math.isfinite(value):  # this process's loss is fine: another one's is not
            where = f"non-finite loss on another process at step {step}" + (f" (this one's batch: {ids})" if ids else "")
        else:
            where = f"non-finite loss ({value}) at step {step}" + (f", batch of {ids}" if ids else "")
        if self.on_nonfinite_loss == "skip":
            logger.warning("%s: skipping this optimizer step (--on_nonfinite_loss skip)", where)
            self._drop_update = True
            return torch.zeros_like(loss)
        last = checkpointing.checkpoints(self.args.output_dir)
        raise HfPretrainError(
            f"{where}; training stopped before the update was applied. The last good checkpoint is "
            f"{last[-1] if last else 'none (no checkpoint was saved yet)'}; resume from it with a lower "
            "--learning_rate, or pass --on_nonfinite_loss skip"
        )

    # --- crash-safe checkpoints --------------------------------------------------------------------------------

    def _get_output_dir(self, trial):
        return self._staging or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = self._get_output_dir(trial)
        name = f"checkpoint-{self.state.global_step}"
        self._staging = checkpointing.staging_root(run_dir)
        try:
            super()._save_checkpoint(model, trial)  # writes into the staging folder (see _get_output_dir)
        finally:
            self._staging = None
        self.accelerator.wait_for_everyone()  # every process has written its part (RNG states are per process)
        if self.args.should_save:
            staged = os.path.join(checkpointing.staging_root(run_dir), name)
            best = self.state.best_model_checkpoint
            if best and os.path.dirname(best) == checkpointing.staging_root(run_dir):
                self.state.best_model_checkpoint = os.path.join(run_dir, os.path.basename(best))
                self.state.save_to_json(os.path.join(staged, TRAINER_STATE_NAME))
            checkpointing.publish(staged, os.path.join(run_dir, name))
            checkpointing.keep_last(run_dir, self.args.save_total_limit, self.state.best_model_checkpoint)
        self.accelerator.wait_for_everyone()

    # --- metrics -----------------------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "sequence_id" in inputs and not self._model_takes_sequence_ids:
            inputs = {key: value for key, value in inputs.items() if key != "sequence_id"}
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        with torch.no_grad():
            self._counts["train" if model.training else "eval"] += self.step_metrics.count(outputs, inputs)
        return (loss, outputs) if return_outputs else loss

    def _summarize(self, mode: str) -> dict[str, float]:
        totals = self.accelerator.reduce(self._counts[mode], reduction="sum").tolist()
        self._counts[mode].zero_()
        return {name: round(value, 4) for name, value in self.step_metrics.summarize(totals).items()}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Both branches are reached by every process at the same point, as the reduction requires.
        if "loss" in logs:  # a training-step log
            logs.update(self._summarize("train"))
            now, tokens = time.time(), self.state.num_input_tokens_seen
            if self._last_log is None and start_time is not None:
                # The first interval starts with training (after a resume: with the tokens already seen).
                self._last_log = (start_time, self._initial_num_input_tokens_seen)
            if self._last_log is not None and tokens > self._last_log[1]:
                logs["tokens_per_second"] = round((tokens - self._last_log[1]) / (now - self._last_log[0]), 1)
            self._last_log = (now, tokens)
        elif "eval_loss" in logs:
            for name, value in self._summarize("eval").items():
                logs.setdefault(f"eval_{name}", value)
        super().log(logs, start_time)


class _DropSkippedUpdate(TrainerCallback):
    """Drops the gradients of an optimizer step that met a non-finite loss (``on_nonfinite_loss="skip"``): with no
    gradients, the optimizer leaves the weights and its moments untouched. With fp16, the gradient scaler already
    skips steps whose gradients are not finite, and needs the gradients to tell."""

    def __init__(self, trainer: PretrainingTrainer) -> None:
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        trainer = self.trainer
        if trainer._drop_update:
            trainer._drop_update = False
            if trainer.accelerator.scaler is None:
                trainer.model.zero_grad(set_to_none=True)


class TimeBudgetCallback(TrainerCallback):
    """Stop training, and save, once ``minutes`` of wall-clock training time have passed.

    Every process must stop at the same step, so under DDP the decision is the maximum over processes.
    """

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self.start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        over = torch.tensor(float(time.monotonic() - self.start >= self.seconds))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            over = over.to(args.device)
            torch.distributed.all_reduce(over, op=torch.distributed.ReduceOp.MAX)
        if over.item():
            logger.info("time budget of %.1f minutes reached at step %d", self.seconds / 60, state.global_step)
            control.should_training_stop = True
            control.should_save = True
        return control


def train_and_evaluate(trainer: Trainer, checkpoint: str | None) -> dict[str, float]:
    """Train (resuming from ``checkpoint``), save the trainer state, then evaluate once if there is a validation
    set; logs and saves both sets of metrics and returns the evaluation's. Saving the model is the caller's."""
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_state()
    trainer.log_metrics("train", result.metrics)
    if trainer.eval_dataset is None:
        return {}
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    return metrics


def finish(trainer: Trainer) -> None:
    """End the run cleanly on every process: wait for the main one's last writes, then close the process group
    (a group left to interpreter shutdown can abort a process after its work is done)."""
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()


def configure_logging(args: TrainingArguments) -> None:
    """Our INFO lines on the process that logs, warnings elsewhere; transformers at its own configured level."""
    import transformers

    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if args.should_log else logging.WARNING,
    )
    transformers.utils.logging.set_verbosity(args.get_process_log_level())


def resume_checkpoint(args: TrainingArguments) -> str | None:
    """The checkpoint to resume from: ``--resume_from_checkpoint``, else the last one in ``--output_dir`` (every
    visible checkpoint is complete; what a killed run left half-written is discarded first)."""
    if args.process_index == 0:
        checkpointing.discard_incomplete(args.output_dir)
    if args.resume_from_checkpoint:
        if not os.path.isdir(args.resume_from_checkpoint):
            raise HfPretrainError(f"--resume_from_checkpoint {args.resume_from_checkpoint}: no such checkpoint directory")
        return args.resume_from_checkpoint
    found = checkpointing.checkpoints(args.output_dir)
    if found:
        logger.info("resuming from %s, the last checkpoint in --output_dir", found[-1])
        return found[-1]
    return None


def training_args_for_trainer(args: TrainingArguments, count_tokens: bool = False, **overrides) -> TrainingArguments:
    """A copy of ``args`` to hand to ``Trainer``.

    It never pushes by itself (the recipes push the final folder with our model card) and holds no Hub token,
    since the Trainer pickles its arguments into every checkpoint. With ``count_tokens`` it counts non-padding
    tokens, which the pretraining logs (tokens/s) and model card report.
    """
    import dataclasses

    counting = args.include_num_input_tokens_seen
    if count_tokens and counting == "no":
        counting = "non_padding"
    return dataclasses.replace(
        args, push_to_hub=False, hub_token=None, include_num_input_tokens_seen=counting, **overrides
    )
