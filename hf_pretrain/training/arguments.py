"""``RunArguments``: how a pretraining run guards itself, beside ``TrainingArguments``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HfPretrainError

NONFINITE_POLICIES = ("stop", "skip")


@dataclass
class RunArguments:
    """The run's wall-clock budget, what a non-finite loss does, and the data-order audit log."""

    max_train_minutes: float | None = field(
        default=None, metadata={"help": "Stop training (and save) after this many minutes of wall-clock time."}
    )
    on_nonfinite_loss: str = field(
        default="stop",
        metadata={
            "help": "A NaN or infinite loss: 'stop' the run with an error naming the step and batch (the last "
            "checkpoint stays good) or 'skip' that optimizer step."
        },
    )
    log_sequence_ids: bool = field(
        default=False,
        metadata={"help": "Append the sequence ids of every training batch to <output_dir>/sequence_ids/ (audit)."},
    )

    def __post_init__(self) -> None:
        if self.on_nonfinite_loss not in NONFINITE_POLICIES:
            raise HfPretrainError(
                f"--on_nonfinite_loss must be one of {', '.join(NONFINITE_POLICIES)}, not '{self.on_nonfinite_loss}'"
            )
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise HfPretrainError("--max_train_minutes must be positive")
