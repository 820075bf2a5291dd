"""Callbacks of a pretraining run: the wall-clock budget, non-finite losses, and the data-order audit log.

Each one reads what :class:`~hf_pretrain.training.trainer.PretrainingTrainer` records of the step's micro-batches
(their losses, still on the device, and their sequence ids), so that the whole step is checked with one
synchronisation, before the optimizer applies anything.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import ProgressCallback, TrainerCallback

from ..errors import HfPretrainError
from . import checkpoints
from .schedules import TimeKeyedMultiplier

logger = logging.getLogger(__name__)


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


@dataclass
class StepBatches:
    """The micro-batches of the optimizer step in progress: each one's loss (a device tensor, never synchronised
    here) and sequence ids. A new step's first micro-batch drops the previous step's."""

    step: int = -1
    losses: list[torch.Tensor] = field(default_factory=list)
    sequence_ids: list[torch.Tensor | None] = field(default_factory=list)

    def add(self, step: int, loss: torch.Tensor, sequence_ids: torch.Tensor | None) -> None:
        if step != self.step:
            self.step, self.losses, self.sequence_ids = step, [], []
        self.losses.append(loss.detach())
        self.sequence_ids.append(sequence_ids)


@dataclass
class _CheckedStep:
    """What a non-finite-loss check needs of one optimizer step: its micro-batches' finiteness (on the device)."""

    step: int
    finite: torch.Tensor  # (micro-batches,) bool
    losses: list[torch.Tensor]
    sequence_ids: list[torch.Tensor | None]


class NonFiniteLossCallback(TrainerCallback):
    """Catches a NaN or infinite loss at the optimizer step it happens, on every process at once, before the update.

    ``policy="stop"`` raises an error naming the step, the batch's sequence ids and the last good checkpoint;
    ``"skip"`` drops the step's gradients, so the optimizer leaves the weights and its moments untouched. One
    finiteness check per optimizer step: the micro-batches' losses are stacked, reduced over processes and read
    once. With ``every=N`` the steps' finiteness stays on the device and is read once every N steps (and at the end
    of training), so the steps between never wait for the device; a bad step is then named up to N - 1 steps after
    its update ("stop" only: "skip" must know before the update). With fp16 the gradient scaler already skips steps
    whose gradients are not finite.
    """

    def __init__(self, batches: StepBatches, policy: str = "stop", every: int = 1, max_skips: int = 5) -> None:
        self.batches = batches
        self.policy = policy
        self.every = every
        self.max_skips = max_skips
        self.skipped: list[int] = []  # the steps skipped in a row, up to the current one
        self.pending: list[_CheckedStep] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if not self.batches.losses:
            return
        step = state.global_step + 1
        finite = torch.isfinite(torch.stack([loss.float().reshape(()) for loss in self.batches.losses]))
        self.pending.append(_CheckedStep(step, finite, list(self.batches.losses), list(self.batches.sequence_ids)))
        if step % self.every == 0:  # the same steps on every process, as the reduction requires
            self._check(args, state, step, model, pending_update=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.pending:  # the steps since the last check, before the final weights are saved
            self._check(args, state, state.global_step)

    def _check(self, args, state, step: int, model=None, pending_update: bool = False) -> None:
        """Reads the finiteness of the steps since the last check, at ``step`` (whose update is still to come
        when ``pending_update``)."""
        pending, self.pending = self.pending, []
        everywhere = torch.stack([checked.finite.all() for checked in pending]).to(args.device, torch.float32)
        if _distributed():
            torch.distributed.all_reduce(everywhere, op=torch.distributed.ReduceOp.MIN)
        if everywhere.all().item():
            self.skipped = []
            return
        bad = pending[everywhere.tolist().index(0.0)]
        message = self._where(bad)
        before_update = pending_update and bad.step == step
        if not before_update:
            message += f" (found at step {step}: --host_sync_steps {self.every} reads the device every {self.every} steps)"
        # Good means saved before the loss rose, with finite and sane weights: a blow-up makes the weights huge, then
        # infinite, before the loss is, and a checkpoint of huge weights blows up again on resume.
        last = checkpoints.last_good_before(args.output_dir, state.log_history, bad.step)
        resume = recovery_advice(last)
        if self.policy == "skip":
            self.skipped.append(bad.step)
            if len(self.skipped) < self.max_skips:
                logger.warning("%s: skipping this optimizer step (--on_nonfinite_loss skip)", message)
                if model is not None and not args.fp16:  # fp16: the gradient scaler skips the step itself
                    model.zero_grad(set_to_none=True)
                return
            raise HfPretrainError(
                f"{message}: {len(self.skipped)} optimizer steps in a row with a non-finite loss (steps "
                f"{self.skipped[0]}-{self.skipped[-1]}, skipped), so training stopped (--max_nonfinite_skips "
                f"{self.max_skips}). {resume}"
            )
        applied = "before the update was applied" if before_update else "after its update"
        raise HfPretrainError(
            f"{message}; training stopped {applied}. {resume}, or pass --on_nonfinite_loss skip"
        )

    @staticmethod
    def _where(checked: _CheckedStep) -> str:
        bad = [i for i, ok in enumerate(checked.finite.tolist()) if not ok]
        if not bad:  # this process's losses are fine: another one's are not
            ids = checked.sequence_ids[0]
            return f"non-finite loss on another process at step {checked.step}" + (
                f" (this one's batch: sequence ids {ids.tolist()[:16]})" if ids is not None else "")
        value = checked.losses[bad[0]].item()
        ids = checked.sequence_ids[bad[0]]
        return f"non-finite loss ({value}) at step {checked.step}" + (
            f", batch of sequence ids {ids.tolist()[:16]}" if ids is not None else "")


def recovery_advice(last_good: str | None) -> str:
    """What to do after a blow-up, given the checkpoint :func:`.checkpoints.last_good_before` found."""
    if last_good is None:
        return ("No checkpoint was saved before the loss rose: start afresh with a lower --learning_rate "
                "(--overwrite_output_dir)")
    return (f"The last good checkpoint (saved before the loss rose, its weights finite and below "
            f"{checkpoints.MAX_SANE_WEIGHT:g}) is {last_good}: resume from it with --resume_from_checkpoint "
            f"{last_good} and a lower --learning_rate")


class SequenceLogCallback(TrainerCallback):
    """Appends the sequence ids of every micro-batch a process trains on to ``<folder>/rank-<r>.jsonl`` (audit)."""

    def __init__(self, batches: StepBatches, folder: str) -> None:
        self.batches = batches
        self.folder = folder

    def on_train_begin(self, args, state, control, **kwargs):
        """A resumed run trains again the steps after its checkpoint: the killed run's records of them go."""
        path = os.path.join(self.folder, f"rank-{args.process_index}.jsonl")
        if state.global_step and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                kept = [line for line in f if json.loads(line)["step"] <= state.global_step]
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.writelines(kept)
            os.replace(path + ".tmp", path)

    def on_step_end(self, args, state, control, **kwargs):
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, f"rank-{args.process_index}.jsonl")
        with open(path, "a", encoding="utf-8") as f:
            for micro_batch, ids in enumerate(self.batches.sequence_ids):
                if ids is not None:
                    f.write(json.dumps({"step": state.global_step, "micro_batch": micro_batch,
                                        "sequence_ids": ids.tolist()}) + "\n")


class LearningRateOnResumeCallback(TrainerCallback):
    """A resumed run's ``--learning_rate`` takes effect: the Trainer restores the checkpoint's scheduler, whose peak is
    the old rate, so the scheduler and optimizer are rescaled to the new peak (and the change is logged). The
    schedule's shape and position are kept."""

    def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        if state.global_step == 0 or lr_scheduler is None or not hasattr(lr_scheduler, "base_lrs"):
            return
        old = lr_scheduler.base_lrs
        if all(abs(base - args.learning_rate) <= 1e-12 * max(base, 1e-30) for base in old):
            return
        logger.info("resuming with --learning_rate %g; the checkpoint's schedule peaked at %g", args.learning_rate,
                    old[0])
        for group, base in zip(optimizer.param_groups, old):
            scale = args.learning_rate / base
            group["lr"] *= scale
            group["initial_lr"] = args.learning_rate
        # Through the scheduler's public state: its peak and its last rate (what the Trainer logs next).
        rescaled = lr_scheduler.state_dict()
        rescaled["base_lrs"] = [args.learning_rate] * len(old)
        rescaled["_last_lr"] = [group["lr"] for group in optimizer.param_groups]
        lr_scheduler.load_state_dict(rescaled)


class TimeBudgetCallback(TrainerCallback):
    """Stop training, and save, once ``minutes`` of wall-clock training time have passed.

    Every process must stop at the same step, so the time is the maximum over processes, agreed every ``every``
    steps (a host synchronisation); a single process reads its clock every step. With a time-keyed learning-rate
    schedule (``multiplier``), the callback also hands it the time spent, so processes keep the same learning rate;
    the time then lives in the scheduler's state, so a resumed run continues the budget where the checkpoint left it.
    """

    def __init__(self, minutes: float, multiplier: TimeKeyedMultiplier | None = None, clock=time.monotonic,
                 every: int = 1) -> None:
        self.seconds = minutes * 60
        self.every = every
        self.multiplier = multiplier
        self.clock = clock
        self.start: float | None = None
        self.before = 0.0  # training time spent before this process started (a resumed run's)
        self.spent = 0.0  # of the budget, as last agreed (what the progress bar shows)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.clock()
        self.before = self.spent = self.multiplier.spent if self.multiplier is not None else 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if _distributed() and state.global_step % self.every:
            return  # processes agree on the time at every N-th step only; until then the schedule holds its value
        spent = torch.tensor(self.before + self.clock() - self.start, dtype=torch.float64)
        if _distributed():
            spent = spent.to(args.device)
            torch.distributed.all_reduce(spent, op=torch.distributed.ReduceOp.MAX)
        spent = self.spent = spent.item()
        if self.multiplier is not None:
            self.multiplier.spent = spent
        if spent >= self.seconds:
            logger.info("time budget of %.1f minutes reached at step %d", self.seconds / 60, state.global_step)
            control.should_training_stop = True
            control.should_save = True
        return control


class BudgetProgressCallback(ProgressCallback):
    """The training bar of a time-budgeted run, in minutes of the budget (and the step reached), where the stock
    bar would count steps towards the preset's placeholder ``--max_steps`` (``0/1000000``, 350 hours to go)."""

    def __init__(self, budget: TimeBudgetCallback) -> None:
        super().__init__()
        self.budget = budget

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar = tqdm(total=round(self.budget.seconds / 60, 2), dynamic_ncols=True, unit="min",
                                     bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} min of the budget [{elapsed}<"
                                     "{remaining}{postfix}]")
        self.current_step = 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar.n = round(min(self.budget.spent, self.budget.seconds) / 60, 2)
            self.training_bar.set_postfix_str(f"step {state.global_step}", refresh=False)
            self.training_bar.refresh()


class ProbeCallback(TrainerCallback):
    """Runs each probe (``model -> {metric: value}``, e.g. :class:`hf_pretrain.glue.probe.LinearProbe`) on the
    current weights every ``every`` optimizer steps and at the end of training, on the main process, and logs the
    results through ``trainer.log`` so they sit in the log history next to the MLM loss."""

    def __init__(self, trainer, probes, every: int) -> None:
        self.trainer, self.probes, self.every = trainer, list(probes), every
        self._last = -1

    def _probe(self, state, control, model) -> None:
        if not state.is_world_process_zero or state.global_step == self._last:
            return
        self._last = state.global_step
        metrics = {}
        for probe in self.probes:
            metrics.update(probe(model))
        # Trainer.log clears control.should_log; the step's own training log, due on every process, must still
        # happen (its metrics are reduced over processes), so the flag is put back.
        should_log = control.should_log
        self.trainer.log({name: round(value, 4) for name, value in metrics.items()})
        control.should_log = should_log

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._probe(state, control, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._probe(state, control, model)
