"""``PretrainingArguments``: the objective by name, and what masked-LM objectives select and corrupt."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import HfPretrainError
from .masking import MaskingConfig
from .registry import objective_names

MASKINGS = ("dynamic", "static")


@dataclass
class PretrainingArguments:
    """The pretraining objective, chosen by name, and its masking: what is masked, how, and when."""

    objective: str = field(
        default="mlm_nsp",
        metadata={"help": "The objective, by its registered name ('mlm' is masked LM; `hf-pretrain flags` lists "
                  "every one with its flags); --plugins can register more."},
    )
    masking: str = field(
        default="dynamic",
        metadata={
            "help": "'dynamic': new masks each time a sequence is seen (RoBERTa); 'static': masks drawn once at "
            "data preparation, each sequence stored --duplication_factor times (original BERT)."
        },
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "Fraction of tokens selected for prediction."})
    mask_replace_prob: float = field(
        default=0.8, metadata={"help": "Of the selected tokens, the fraction replaced by [MASK]."}
    )
    random_replace_prob: float = field(
        default=0.1, metadata={"help": "Of the selected tokens, the fraction replaced by a random token."}
    )
    duplication_factor: int = field(
        default=10, metadata={"help": "Static masking: how many differently masked copies of each sequence."}
    )
    masking_unit: str = field(
        default="token",
        metadata={
            "help": "What is selected for masking: 'token' (BERT), 'whole_word' (every sub-word of a chosen word) "
            "or 'span' (SpanBERT: spans of whole words with geometric lengths)."
        },
    )
    span_geometric_p: float = field(
        default=0.2, metadata={"help": "Span masking: p of the geometric distribution of span lengths (SpanBERT)."}
    )
    max_span_length: int = field(default=10, metadata={"help": "Span masking: longest span, in words."})
    sparse_prediction: bool = field(
        default=True,
        metadata={
            "help": "Compute the vocabulary projection and MLM loss at the masked positions only (same loss, less "
            "compute); checkpoints are unchanged."
        },
    )
    objective_weights: str | None = field(
        default=None,
        metadata={
            "help": "Weights of an objective's losses, 'name=weight,...': 'mlm=1,nsp=0.5' for mlm_nsp; the "
            "objective names its losses (`hf-pretrain flags`). Unnamed losses weigh 1 (ELECTRA's discriminator: "
            "--discriminator_weight)."
        },
    )
    isolate_documents: bool = field(
        default=False,
        metadata={
            "help": "Pack several documents per sequence, each attending only to itself (block-diagonal "
            "attention, position ids restarting per document); objectives that train on packed rows."
        },
    )
    plugins: list[str] = field(
        default_factory=list,
        metadata={"help": "Your own code to import first: .py files or module names that register an objective "
                  "(register_objective) or an architecture (register_architecture); its --objective name and flags "
                  "then work as the built-in ones do (examples/toy_objective.py)."},
    )

    def __post_init__(self) -> None:
        if self.objective not in objective_names():
            raise HfPretrainError(
                f"--objective must be one of {', '.join(sorted(objective_names()))}, not '{self.objective}'"
            )
        if self.masking not in MASKINGS:
            raise HfPretrainError(f"--masking must be one of {', '.join(MASKINGS)}, not '{self.masking}'")
        if self.duplication_factor < 1:
            raise HfPretrainError("--duplication_factor must be at least 1")
        self.loss_weights  # noqa: B018  (validates the syntax; the objective checks the names)
        try:
            self.masking_config  # noqa: B018  (validates the masking flags)
        except ValueError as err:  # name the flag: the config's field names are the flags' minus the prefix
            message = str(err).replace("unit must", "--masking_unit must")
            for name in ("mlm_probability", "mask_replace_prob", "random_replace_prob", "span_geometric_p",
                         "max_span_length"):
                message = message.replace(f"{name} ", f"--{name} ")
            raise HfPretrainError(message) from None

    @property
    def loss_weights(self) -> dict[str, float]:
        """``--objective_weights`` as ``{loss name: weight}`` (empty when unset)."""
        weights = {}
        for item in (self.objective_weights or "").split(","):
            if not item.strip():
                continue
            name, _, value = item.partition("=")
            try:
                weight = float(value)
            except ValueError:
                weight = float("nan")
            if not name.strip() or not math.isfinite(weight) or weight < 0:
                raise HfPretrainError(
                    f"--objective_weights: '{item.strip()}' is not name=weight with a weight >= 0 (e.g. 'mlm=1,nsp=0.5')"
                )
            weights[name.strip()] = weight
        return weights

    @property
    def masking_config(self) -> MaskingConfig:
        """The masking flags as the one value the masking functions, collators and static masking take."""
        return MaskingConfig(
            mlm_probability=self.mlm_probability,
            mask_replace_prob=self.mask_replace_prob,
            random_replace_prob=self.random_replace_prob,
            unit=self.masking_unit,
            span_geometric_p=self.span_geometric_p,
            max_span_length=self.max_span_length,
        )
