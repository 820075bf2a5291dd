"""``RunArguments``: how a pretraining run guards itself, beside ``TrainingArguments``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HfPretrainError

NONFINITE_POLICIES = ("stop", "skip")


@dataclass
class RunArguments:
    """The run's wall-clock budget and the schedule over it, the optimizer of the transformer blocks, how
    ``--torch_compile`` compiles, what a non-finite loss does and how often the guards read the device, and the
    data-order audit log."""

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
    max_nonfinite_skips: int = field(
        default=5,
        metadata={"help": "With --on_nonfinite_loss skip: stop the run (with an error naming the last good checkpoint) "
                  "at this many optimizer steps in a row with a non-finite loss: a run that skips them all learns "
                  "nothing."},
    )
    host_sync_steps: int = field(
        default=1,
        metadata={"help": "How often the run's guards read the device: the non-finite-loss check, and (over several "
                  "processes) the agreement on a preemption signal and on the time budget, once every N optimizer "
                  "steps; the steps between wait for nothing on the host (what keeps a GPU's queue full). With N > 1 a "
                  "non-finite loss is caught up to N - 1 steps late ('stop' only) and the Trainer's per-micro-batch "
                  "token count is off unless --include_num_input_tokens_seen asks for it."},
    )
    lr_schedule_clock: str = field(
        default="steps",
        metadata={"help": "'steps': the learning-rate schedule runs over the steps, as in transformers; 'time': over "
                  "the --max_train_minutes budget, reaching its floor when the budget ends (Cramming's way). "
                  "Shapes: --lr_scheduler_type linear, cosine, constant_with_warmup or warmup_stable_decay; "
                  "--warmup_steps as a fraction of the budget."},
    )
    decay_ratio: float = field(
        default=0.1,
        metadata={"help": "Time-keyed warmup_stable_decay: the last fraction of the budget, over which it decays."},
    )
    min_lr_ratio: float = field(
        default=0.0, metadata={"help": "Time-keyed schedules: the floor, as a fraction of --learning_rate."}
    )
    use_muon: bool = field(
        default=False,
        metadata={"help": "Train the transformer blocks' weight matrices with Muon (torch.optim.Muon, its updates "
                  "scaled to AdamW's size, so --learning_rate and --weight_decay carry over) and the rest (embeddings, "
                  "output projection, heads, norms, biases) with AdamW. One process or DDP; not FSDP or DeepSpeed."},
    )
    torch_compile_regions: bool = field(
        default=True,
        metadata={"help": "With --torch_compile: compile one transformer block and reuse it for the others, and the "
                  "embeddings and head on their own (accelerate's regional compilation), not the whole model as one "
                  "graph: the same steps/s after a cold start about half as long (budget_match.yaml on one core: "
                  "first step at 40-50 s against 60-77 s). false compiles the whole model."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start afresh even if --output_dir holds checkpoints (by default the run resumes from the "
                  "last one, if its settings match), as run_mlm.py's flag of the same name."},
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
        if self.max_nonfinite_skips < 1:
            raise HfPretrainError(f"--max_nonfinite_skips must be at least 1, not {self.max_nonfinite_skips}")
        if self.host_sync_steps < 1:
            raise HfPretrainError(f"--host_sync_steps must be at least 1, not {self.host_sync_steps}")
        if self.host_sync_steps > 1 and self.on_nonfinite_loss == "skip":
            raise HfPretrainError("--on_nonfinite_loss skip must check every step before its update: drop "
                                  "--host_sync_steps or use --on_nonfinite_loss stop")
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise HfPretrainError("--max_train_minutes must be positive")
        if self.lr_schedule_clock not in ("steps", "time"):
            raise HfPretrainError(f"--lr_schedule_clock must be 'steps' or 'time', not '{self.lr_schedule_clock}'")
        if self.lr_schedule_clock == "time" and not self.max_train_minutes:
            raise HfPretrainError("--lr_schedule_clock time needs --max_train_minutes: the budget it runs over")
        if not 0 < self.decay_ratio <= 1 or not 0 <= self.min_lr_ratio <= 1:
            raise HfPretrainError("--decay_ratio must be in (0, 1] and --min_lr_ratio in [0, 1]")
