"""Learning-rate schedules keyed by wall-clock time: the learning rate reaches its floor when the
``--max_train_minutes`` budget ends (as Cramming's budgeted schedules do), instead of at a ``max_steps`` that a
budgeted run never reaches.

The schedule is a ``LambdaLR`` whose multiplier reads the training time spent (``spent``), which the time-budget
callback measures at the end of every optimizer step, agreed over processes (so every process applies the same
learning rate). ``spent`` is plain data in the multiplier's ``__dict__``, which ``LambdaLR.state_dict()`` saves with
the scheduler in every checkpoint: a resumed run continues the same curve, and the time between a kill and the
restart does not count.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

SHAPES = ("linear", "cosine", "constant", "warmup_stable_decay")


class TimeKeyedMultiplier:
    """The learning-rate multiplier at the fraction of a ``seconds`` budget spent: a linear warmup over
    ``warmup_ratio`` of the budget, then ``shape`` down to ``min_lr_ratio`` at the end of the budget;
    ``warmup_stable_decay`` holds the peak and decays linearly over the last ``decay_ratio`` of the budget."""

    def __init__(self, seconds: float, shape: str = "linear", warmup_ratio: float = 0.0, decay_ratio: float = 0.1,
                 min_lr_ratio: float = 0.0) -> None:
        if shape not in SHAPES:
            raise ValueError(f"a time-keyed schedule is one of {', '.join(SHAPES)}, not {shape!r}")
        self.seconds, self.shape = float(seconds), shape
        self.warmup_ratio, self.decay_ratio, self.min_lr_ratio = warmup_ratio, decay_ratio, min_lr_ratio
        self.spent = 0.0

    def at(self, fraction: float) -> float:
        """The multiplier at ``fraction`` of the budget."""
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction < self.warmup_ratio:
            return fraction / self.warmup_ratio
        after = (fraction - self.warmup_ratio) / max(1.0 - self.warmup_ratio, 1e-12)  # in [0, 1]
        if self.shape == "constant":
            decay = 1.0
        elif self.shape == "cosine":
            decay = 0.5 * (1.0 + math.cos(math.pi * after))
        elif self.shape == "warmup_stable_decay":
            start = 1.0 - self.decay_ratio
            decay = 1.0 if fraction < start else (1.0 - fraction) / self.decay_ratio
        else:
            decay = 1.0 - after
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * decay

    def __call__(self, step: int) -> float:
        return self.at(self.spent / self.seconds)


def time_keyed_schedule(optimizer: Optimizer, multiplier: TimeKeyedMultiplier) -> LambdaLR:
    """A ``LambdaLR`` driven by the training time ``multiplier.spent``."""
    return LambdaLR(optimizer, multiplier)
