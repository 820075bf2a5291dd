"""The objective interface: everything the recipes and the Trainer glue need to know about a pretraining objective.

An objective says how training rows are built from tokenized documents, which collator batches them, which
training-time model learns from them (which declares what it exports: :mod:`hf_pretrain.models.export`), which metrics it counts at each step,
and what the model card says about it. The recipes pick one by name (:mod:`.registry`); the Trainer glue sees only
this interface.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..errors import HfPretrainError
from ..models.arguments import ModelArguments
from ..models.loading import check_model_type
from .arguments import PretrainingArguments
from .registry import objective_classes


class StepMetrics(abc.ABC):
    """What an objective counts at each step, and how counts become logged metrics.

    ``count`` returns a 1-D tensor of sums for one batch (on the batch's device, no synchronisation); the trainer
    adds them up between logging steps, sums them over processes, and ``summarize`` turns the totals into metrics.
    The same counts serve training logs and evaluation: nothing is computed twice and no logits are gathered.
    """

    names: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def count(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sums for one batch, in the order of ``names``."""

    @abc.abstractmethod
    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        """Metrics from the totals (keyed by ``names``) of one logging interval or one evaluation."""


class Objective(abc.ABC):
    """A pretraining objective. Subclasses set ``name`` and register with :func:`.registry.register_objective`.

    ``arguments_class`` names an extra argument dataclass the objective takes (parsed beside the others; its
    instance reaches ``__init__`` as ``extra``).
    """

    name: ClassVar[str]
    title: ClassVar[str]  # in words, for model cards: "masked LM + next-sentence prediction"
    pipeline_tag: ClassVar[str] = "fill-mask"
    card_tags: ClassVar[tuple[str, ...]] = ("fill-mask", "pretraining")
    arguments_class: ClassVar[type | None] = None
    default_model_type: ClassVar[str] = "bert"  # what it trains when neither --model_type nor a config says
    head: ClassVar[str] = "masked-LM"  # the kind of transformers model it trains (a key of models.loading.HEADS)
    losses: ClassVar[tuple[str, ...]] = ("mlm",)  # the losses it sums, by the names --objective_weights uses
    streams: ClassVar[bool] = False  # trains on packed rows that --streaming can make as the corpus is read

    def __init__(self, args: PretrainingArguments, seed: int, extra: Any = None) -> None:
        self.args = args
        self.masking = args.masking_config
        self.seed = seed
        self.extra = extra
        self.loss_weights = self.weigh_losses(args.loss_weights)

    @property
    def document_stream(self) -> bool:
        """Whether packed rows are cut straight from the stream of ``[CLS] document [SEP]`` (True), or are each
        ``[CLS] chunk [SEP]`` over documents joined by ``[SEP]`` (RoBERTa's full sentences): see
        :func:`~hf_pretrain.data.sequences.pack_sequences`. Isolated documents need the stream (each document's
        ``[CLS]`` marks where it starts)."""
        return self.args.isolate_documents

    def default_loss_weights(self) -> dict[str, float]:
        return dict.fromkeys(self.losses, 1.0)

    def weigh_losses(self, given: dict[str, float]) -> dict[str, float]:
        """Every loss's weight: ``given`` (``--objective_weights``) over the defaults; refused in one line for an
        objective with one loss, an unknown name, or all weights 0."""
        if not given:
            return self.default_loss_weights()
        if len(self.losses) == 1:
            several = "; ".join(f"{cls.name}: {', '.join(cls.losses)}" for cls in objective_classes()
                                if len(cls.losses) > 1)
            raise HfPretrainError(
                f"--objective_weights: --objective {self.name} has one loss ({self.losses[0]}); weights apply to "
                f"objectives with several ({several})"
            )
        unknown = sorted(set(given) - set(self.losses))
        if unknown:
            raise HfPretrainError(
                f"--objective_weights: --objective {self.name} has no loss named {', '.join(unknown)}; its losses are "
                f"{', '.join(self.losses)}"
            )
        weights = {**self.default_loss_weights(), **given}
        if not any(weights.values()):
            raise HfPretrainError("--objective_weights: every weight is 0, so nothing would be trained")
        return weights

    def loss_description(self) -> str:
        """``mlm + 0.5 x nsp``: the loss the model card names."""
        return " + ".join(name if weight == 1 else f"{weight:g} x {name}" for name, weight in self.loss_weights.items())

    def check_model(self, model_args: ModelArguments) -> None:
        """Refuse, in one line and before any data work, a model this objective cannot train."""
        check_model_type(model_args, self.default_model_type, self.head, self.name)

    # --- data ---------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def build_rows(
        self, tokenized: Dataset, tokenizer: PreTrainedTokenizerBase, *, split: str, max_seq_length: int,
        source: str, num_proc: int | None = None, short_seq_probability: float = 0.1,
    ) -> Dataset:
        """Training (``split == "train"``) or evaluation rows from tokenized documents (:func:`tokenize_documents`)."""

    @abc.abstractmethod
    def collator(self, tokenizer: PreTrainedTokenizerBase):
        """The data collator that turns a list of rows into a model batch."""

    # --- model --------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> PreTrainedModel:
        """The training-time model, fresh or from ``model_args.model_name_or_path``."""

    @abc.abstractmethod
    def step_metrics(self) -> StepMetrics:
        """What the trainer counts at each training and evaluation step."""

    # --- description ----------------------------------------------------------------------------------------------

    def card_rows(self) -> dict[str, Any]:
        """The Objective section of the model card, beyond the objective's title."""
        return {}
