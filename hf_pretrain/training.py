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
    """``Trainer`` that also logs an objective's own metrics (``step_metrics``) and tokens/s.

    The loss is the model's own; the override only reads the outputs it already computed, so no extra forward
    pass is made. Training counts are logged at every logging step; counts made during an evaluation are added to
    its metrics as ``eval_<name>``.
    """

    def __init__(self, *args, step_metrics: StepMetrics | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.step_metrics = step_metrics or MaskedLMMetrics()
        size = len(self.step_metrics.names)
        self._counts = {
            mode: torch.zeros(size, dtype=torch.float64, device=self.args.device) for mode in ("train", "eval")
        }
        self._last_log: tuple[float, int] | None = None  # (time, tokens seen) at the previous training log

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
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


def configure_logging(args: TrainingArguments) -> None:
    """Our INFO lines on the process that logs, warnings elsewhere; transformers at its own configured level."""
    import transformers

    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if args.should_log else logging.WARNING,
    )
    transformers.utils.logging.set_verbosity(args.get_process_log_level())


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
