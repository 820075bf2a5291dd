"""Glue between our pieces and the stock ``transformers.Trainer``: training metrics, time budget, resume."""

from __future__ import annotations

import logging
import os
import time

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from .errors import HfPretrainError
from .masking import IGNORE_INDEX

logger = logging.getLogger(__name__)


class PretrainingTrainer(Trainer):
    """``Trainer`` that also logs MLM accuracy, NSP accuracy and tokens/s at every logging step.

    The loss is the model's own; the override only reads the outputs it already computed, so no extra forward
    pass is made. Counts stay on the device between logging steps and are summed over processes when logged.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # mlm correct, mlm selected, nsp correct, nsp total
        self._counts = torch.zeros(4, dtype=torch.float64, device=self.args.device)
        self._last_log: tuple[float, int] | None = None  # (time, tokens seen) at the previous training log

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            with torch.no_grad():
                self._count(outputs, inputs)
        return (loss, outputs) if return_outputs else loss

    def _count(self, outputs, inputs) -> None:
        logits = outputs["prediction_logits"] if "prediction_logits" in outputs else outputs["logits"]
        labels = inputs["labels"]
        selected = labels != IGNORE_INDEX
        self._counts[0] += (logits.argmax(-1)[selected] == labels[selected]).sum()
        self._counts[1] += selected.sum()
        if "next_sentence_label" in inputs:
            nsp = inputs["next_sentence_label"]
            self._counts[2] += (outputs["seq_relationship_logits"].argmax(-1) == nsp).sum()
            self._counts[3] += nsp.numel()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training-step log, reached by every process at the same step
            counts = self.accelerator.reduce(self._counts, reduction="sum").tolist()
            self._counts.zero_()
            if counts[1]:
                logs["mlm_accuracy"] = round(counts[0] / counts[1], 4)
            if counts[3]:
                logs["nsp_accuracy"] = round(counts[2] / counts[3], 4)
            now, tokens = time.time(), self.state.num_input_tokens_seen
            if self._last_log is None and start_time is not None:
                # The first interval starts with training (after a resume: with the tokens already seen).
                self._last_log = (start_time, self._initial_num_input_tokens_seen)
            if self._last_log is not None and tokens > self._last_log[1]:
                logs["tokens_per_second"] = round((tokens - self._last_log[1]) / (now - self._last_log[0]), 1)
            self._last_log = (now, tokens)
        super().log(logs, start_time)


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


def resume_checkpoint(args: TrainingArguments) -> str | None:
    """The checkpoint to resume from: ``--resume_from_checkpoint``, else the last one in ``--output_dir``."""
    if args.resume_from_checkpoint:
        if not os.path.isdir(args.resume_from_checkpoint):
            raise HfPretrainError(f"--resume_from_checkpoint {args.resume_from_checkpoint}: no such checkpoint directory")
        return args.resume_from_checkpoint
    if os.path.isdir(args.output_dir):
        last = get_last_checkpoint(args.output_dir)
        if last is not None:
            logger.info("resuming from %s, the last checkpoint in --output_dir", last)
        return last
    return None


def training_args_for_trainer(args: TrainingArguments, count_tokens: bool = False) -> TrainingArguments:
    """A copy of ``args`` to hand to ``Trainer``.

    It never pushes by itself (the recipes push the final folder with our model card) and holds no Hub token,
    since the Trainer pickles its arguments into every checkpoint. With ``count_tokens`` it counts non-padding
    tokens, which the pretraining logs (tokens/s) and model card report.
    """
    import dataclasses

    counting = args.include_num_input_tokens_seen
    if count_tokens and counting == "no":
        counting = "non_padding"
    return dataclasses.replace(args, push_to_hub=False, hub_token=None, include_num_input_tokens_seen=counting)
