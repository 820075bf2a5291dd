"""``GlueArguments``: the GLUE task, its data and the seeds to fine-tune over."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HfPretrainError, check_bad_input_policy
from .tasks import GLUE_TASKS


@dataclass
class GlueArguments:
    """Which GLUE task to fine-tune on, where its data is, and over which seeds."""

    model_name_or_path: str = field(
        default=None, metadata={"help": "The pretrained checkpoint (a save_pretrained folder or a Hub id)."}
    )
    task_name: str = field(default="mrpc", metadata={"help": "GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli."})
    glue_dir: str | None = field(
        default=None,
        metadata={"help": "Local GLUE data in the distribution's layout (<glue_dir>/MRPC/train.tsv). Hub if unset."},
    )
    max_seq_length: int = field(default=128, metadata={"help": "Pairs are truncated to this many tokens."})
    seeds: list[int] | None = field(
        default=None, metadata={"help": "Fine-tune once per seed and report mean and std (default: --seed)."}
    )
    from_scratch: bool = field(
        default=False,
        metadata={"help": "Baseline: the checkpoint's architecture and tokenizer with randomly initialized weights."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only the first N evaluation examples."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow code from the checkpoint's repository to run (off: it is unsafe)."}
    )
    use_safetensors: bool = field(
        default=True,
        metadata={"help": "Load weights from safetensors only; false also allows pickled .bin weights (trusted only)."},
    )
    on_bad_input: str = field(
        default="error",
        metadata={
            "help": "A malformed TSV row (wrong number of fields, unknown label, not UTF-8): 'error' stops with "
            "its file and line; 'skip' leaves it out and reports how many were skipped."
        },
    )

    def __post_init__(self) -> None:
        check_bad_input_policy(self.on_bad_input)

        if not self.model_name_or_path:
            raise HfPretrainError("--model_name_or_path is required: the checkpoint to fine-tune")
        self.task_name = self.task_name.lower().replace("-", "")
        if self.task_name not in GLUE_TASKS:
            raise HfPretrainError(f"--task_name must be one of {', '.join(GLUE_TASKS)}, not '{self.task_name}'")
