"""``GlueArguments``: the GLUE task, its data and the seeds to fine-tune over."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import HfPretrainError, check_bad_input_policy
from .adaptation import ADAPTATIONS
from .tasks import GLUE_TASKS


MIN_SEQ_LENGTH = 8


@dataclass
class GlueArguments:
    """Which GLUE task to fine-tune on, where its data is, and over which seeds."""

    model_name_or_path: str = field(
        default=None, metadata={"help": "The pretrained checkpoint (a save_pretrained folder or a Hub id)."}
    )
    task_name: str = field(
        default="mrpc",
        metadata={"help": "GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli), several joined by commas, "
                  "or 'all': every task found in --glue_dir (every task, from the Hub), then the GLUE score."},
    )
    task_overrides: dict | str | None = field(
        default=None,
        metadata={"help": "Per-task training arguments over the shared ones, as a mapping (a preset's, or JSON): "
                  "'{\"rte\": {\"num_train_epochs\": 10}}'. Small tasks (RTE, MRPC, STS-B) need more epochs."},
    )
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
    adaptation: str = field(
        default="full",
        metadata={"help": "full (every weight trains), linear_probe (the pretrained weights frozen, the task head "
                  "trained) or lora (low-rank adapters with peft, the task head trained). The probe and LoRA usually "
                  "want a higher --learning_rate (1e-3)."},
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling (alpha / r multiplies the update)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Modules that get adapters (default: the attention projections: query and value for "
                  "BERT, RoBERTa, ELECTRA; Wqkv for ModernBERT)."},
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
        if self.max_seq_length < MIN_SEQ_LENGTH:  # below it a pair cannot be truncated, and the tokenizer only warns
            raise HfPretrainError(f"--max_seq_length must be at least {MIN_SEQ_LENGTH}, not {self.max_seq_length}: a "
                                  "pair takes 3 special tokens before any of its text")
        if self.adaptation not in ADAPTATIONS:
            raise HfPretrainError(f"--adaptation must be one of {', '.join(ADAPTATIONS)}, not '{self.adaptation}'")
        self.task_name = self.task_name.lower().replace("-", "")
        names = list(GLUE_TASKS) if self.task_name == "all" else [n.strip() for n in self.task_name.split(",")]
        unknown = [name for name in names if name not in GLUE_TASKS]
        if unknown:
            raise HfPretrainError(
                f"--task_name must be 'all' or among {', '.join(GLUE_TASKS)} (joined by commas), not '{unknown[0]}'"
            )
        self.task_names = list(dict.fromkeys(names))
        if isinstance(self.task_overrides, str):
            try:
                self.task_overrides = json.loads(self.task_overrides)
            except json.JSONDecodeError as err:
                raise HfPretrainError(f"--task_overrides: not JSON ({err.msg} at character {err.pos})") from None
        overrides = self.task_overrides or {}
        if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
            raise HfPretrainError("--task_overrides must map task names to mappings of training arguments")
        stray = [name for name in overrides if name not in GLUE_TASKS]
        if stray:
            raise HfPretrainError(f"--task_overrides: '{stray[0]}' is not a GLUE task ({', '.join(GLUE_TASKS)})")

    @property
    def several_tasks(self) -> bool:
        """Whether the run covers several tasks (a folder per task, and the GLUE table) or one (as before)."""
        return self.task_name == "all" or len(self.task_names) > 1


@dataclass
class ProbeArguments:
    """A linear probe of the encoder on GLUE tasks every N steps of pretraining (:mod:`hf_pretrain.glue.probe`)."""

    probe_tasks: list[str] | None = field(
        default=None,
        metadata={"help": "GLUE tasks to probe while pretraining (e.g. mrpc): a logistic regression on the frozen "
                  "encoder's features, logged as probe_<task>_accuracy next to the MLM loss."},
    )
    probe_every: int = field(default=500, metadata={"help": "Probe every N optimizer steps (and at the end)."})
    glue_dir: str | None = field(
        default=None, metadata={"help": "The GLUE files for --probe_tasks (<glue_dir>/MRPC/train.tsv); Hub if unset."}
    )
    probe_train_samples: int = field(default=1000, metadata={"help": "Training pairs the probe is fit on."})
    probe_eval_samples: int = field(default=400, metadata={"help": "Evaluation pairs the probe is scored on."})
    probe_pooling: str = field(default="mean", metadata={"help": "Features: mean of the tokens (mean) or the first (cls)."})

    def __post_init__(self) -> None:
        unknown = [name for name in self.probe_tasks or [] if name not in GLUE_TASKS]
        if unknown:
            raise HfPretrainError(f"--probe_tasks: '{unknown[0]}' is not a GLUE task ({', '.join(GLUE_TASKS)})")
        if self.probe_every < 1:
            raise HfPretrainError(f"--probe_every must be at least 1, not {self.probe_every}")
