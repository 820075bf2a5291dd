"""``PretrainingTrainer``: the stock ``Trainer`` plus an objective's step metrics in its logs. Nothing else: the
time budget, non-finite losses, the sequence log and checkpoint manifests are callbacks (:mod:`.callbacks`,
:mod:`.checkpoints`), and data order, resume and saving are the Trainer's own."""

from __future__ import annotations

import inspect

import torch
from transformers import Trainer

from ..objectives.base import StepMetrics
from ..rng import Stream, torch_generator
from .callbacks import StepBatches
from .optimizer import muon_with_adamw


class PretrainingTrainer(Trainer):
    """``Trainer`` that counts ``step_metrics`` (an objective's MLM accuracy, NSP accuracy, ELECTRA's precision...)
    from the outputs the model already computed, and logs them with the loss, in training and evaluation.

    ``lr_schedule`` (optimizer -> scheduler) replaces the schedule ``--lr_scheduler_type`` names, through the
    public ``create_scheduler`` hook: the time-keyed schedules of :mod:`.schedules` come this way. ``use_muon`` replaces
    AdamW with :mod:`.optimizer`'s Muon-and-AdamW through the public ``create_optimizer`` hook.

    It also records each training micro-batch's loss and sequence ids in ``step_batches`` for the callbacks that
    check them. The loss is the model's own. Batches keep their ``sequence_id`` up to here (the collator keys masks
    by it); it reaches the model only if the model's ``forward`` takes it.
    """

    def __init__(self, *args, step_metrics: StepMetrics, lr_schedule=None, use_muon: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.step_metrics = step_metrics
        self.lr_schedule = lr_schedule  # optimizer -> scheduler, in place of --lr_scheduler_type's
        self.use_muon = use_muon
        self.step_batches = StepBatches()
        self._counts = {
            mode: torch.zeros(len(step_metrics.names), dtype=torch.float64, device=self.args.device)
            for mode in ("train", "eval")
        }
        model = self.accelerator.unwrap_model(self.model)
        self._model_takes_sequence_ids = "sequence_id" in inspect.signature(model.forward).parameters
        # A checkpoint holds one copy of each tied weight. On resume, Trainer calls the other copies "missing keys"
        # in a warning, unless they are the keys the model does not save; which they are, so they are listed as
        # such (Trainer then re-ties them). tests/test_faults.py pins this: a resume logs no missing keys.
        model._keys_to_ignore_on_save = set(model._keys_to_ignore_on_save or ()) | set(
            getattr(model, "all_tied_weights_keys", {})
        )

    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        base = getattr(loader, "base_dataloader", loader)  # accelerate's DataLoaderShard iterates a DataLoader it holds
        if isinstance(self.train_dataset, torch.utils.data.IterableDataset) and base.generator is None:
            # Every iterator over a DataLoader draws a seed (for its workers) from this generator, or else from the
            # global RNG. A resumed stream's iterator is made after the Trainer restores the checkpoint's RNG state,
            # so drawing it from there would shift dropout away from the uninterrupted run's (tests/test_streaming).
            base.generator = torch_generator(Stream.STREAM_LOADER, self.args.seed, self.args.process_index)
        return loader

    def create_optimizer(self, model=None):
        if not self.use_muon:
            return super().create_optimizer(model)
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            self.optimizer = muon_with_adamw(opt_model, self.args, set(self.get_decay_parameter_names(opt_model)))
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_schedule is None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            self.lr_scheduler = self.lr_schedule(self.optimizer if optimizer is None else optimizer)
        return self.lr_scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        sequence_ids = inputs.get("sequence_id")
        if sequence_ids is not None and not self._model_takes_sequence_ids:
            inputs = {key: value for key, value in inputs.items() if key != "sequence_id"}
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        with torch.no_grad():
            self._counts["train" if model.training else "eval"] += self.step_metrics.count(outputs, inputs)
        if model.training:
            self.step_batches.add(self.state.global_step, loss, sequence_ids)
        return (loss, outputs) if return_outputs else loss

    def _summarize(self, mode: str) -> dict[str, float]:
        totals = self.accelerator.reduce(self._counts[mode], reduction="sum").tolist()
        self._counts[mode].zero_()
        metrics = self.step_metrics.summarize(dict(zip(self.step_metrics.names, totals)))
        return {name: round(value, 4) for name, value in metrics.items()}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Both branches are reached by every process at the same point, as the reduction requires.
        if "loss" in logs:  # a training-step log
            logs.update(self._summarize("train"))
        elif "eval_loss" in logs:
            logs.update({f"eval_{name}": value for name, value in self._summarize("eval").items()})
        super().log(logs, start_time)
