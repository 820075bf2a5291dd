"""Preemption: SIGTERM (a scheduler's notice) or SIGINT (Ctrl-C) during training finishes the optimizer step in
progress on every process, saves a checkpoint of it, and stops the run, which then exits non-zero saying so
(:class:`~hf_pretrain.errors.Interrupted`). A rerun of the same command resumes from that checkpoint.

Schedulers and terminals signal every process of the job; a signal that reaches one process only is still
honoured by all, since the processes agree on it at each step's end (every ``--host_sync_steps`` steps' end). A second Ctrl-C stops at once, without a
checkpoint (the last complete one stays the one to resume); repeated SIGTERMs are one notice (a launcher such as
torchrun forwards the scheduler's signal to processes that already got it).
"""

from __future__ import annotations

import logging
import signal
import threading

import torch
from transformers import TrainerCallback

from ..errors import Interrupted

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PreemptionCallback(TrainerCallback):
    """Turns a SIGTERM or SIGINT received during ``Trainer.train`` into a checkpoint at the end of the current
    optimizer step and a stop. :meth:`raise_if_stopped`, called after ``train`` returns, ends the run. Over several
    processes they agree on it every ``every`` steps (one scalar all-reduce, a host synchronisation)."""

    def __init__(self, every: int = 1) -> None:
        self.every = every
        self.received: int = 0  # the signal's number; 0 while none came
        self.stopped_at: int | None = None  # the step whose checkpoint was saved
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            self._restore()
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        if not self.received:
            logger.warning("%s received: finishing this step, saving a checkpoint, then stopping (Ctrl-C again to stop "
                           "at once)", signal.Signals(signum).name)
            self.received = signum

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():  # Python delivers signals to the main thread
            self._previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}

    def on_step_end(self, args, state, control, **kwargs):
        received = self.received
        if args.world_size > 1:
            if state.global_step % self.every:
                return  # not a step the processes agree at: each goes on until the next one
            # Every process must stop at the same step, or the others would wait forever in the next one's
            # collectives: the highest signal number any process got wins. One scalar per optimizer step.
            flag = torch.tensor([received], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            received = int(flag.item())
        if received:
            self.received = self.received or received
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self._restore()

    def raise_if_stopped(self, output_dir: str) -> None:
        """After ``train`` returned: if a signal stopped it, end the run with :class:`Interrupted`."""
        if self.stopped_at is None:
            return
        name = signal.Signals(self.received).name
        raise Interrupted(
            f"stopped by {name} at step {self.stopped_at}, its checkpoint saved in {output_dir}/checkpoint-"
            f"{self.stopped_at}: rerun the same command to resume from it", exit_code=128 + self.received,
        )
