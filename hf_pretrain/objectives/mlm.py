"""Masked language modeling (BERT, RoBERTa): ``mlm`` on packed rows, ``mlm_nsp`` on next-sentence pairs.

The masking is shared by every objective that predicts masked tokens (ELECTRA's generator too): dynamic masks
from the collator, or static ones drawn once at data preparation; validation rows are always masked once, so every
evaluation of a run scores the same masks.
"""

from __future__ import annotations

from typing import Any, ClassVar

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..data.pairs import build_nsp_pairs
from ..data.sequences import pack_sequences
from ..errors import HfPretrainError
from ..models.arguments import ModelArguments
from ..models.loading import build_pretraining_model, parse_config_overrides
from ..rng import Stream
from .base import Objective, StepMetrics
from .collators import DataCollatorForMaskedLM
from .masking import mask_dataset
from .metrics import MaskedLMMetrics
from .registry import register_objective


def pool_token_mean(model: PreTrainedModel, model_args: ModelArguments) -> PreTrainedModel:
    """A fresh ``model`` saved for classifiers that pool the mean of the tokens, where its architecture has the choice
    (ModernBERT's ``classifier_pooling``; BERT and RoBERTa pool the first token only). For objectives that train every
    token's output and no head on the first: the ``[CLS]`` state they leave is never trained to sum a sequence up,
    and a fine-tuning of a few thousand pairs does not teach it to (measured, the budget preset's checkpoint on STS-B
    dev: 63.5 fine-tuned from the mean against 23.6 from the first token; docs/results.md, 2026-12-07, evening). A
    checkpoint continued from keeps its own choice, and ``--config_overrides classifier_pooling=cls`` is kept."""
    config = model.config
    chosen = parse_config_overrides(model_args.config_overrides, config.to_dict(), config.model_type)
    fresh = not model_args.model_name_or_path
    if fresh and hasattr(config, "classifier_pooling") and "classifier_pooling" not in chosen:
        config.classifier_pooling = "mean"
    return model


class MaskedObjective(Objective):
    """What objectives that predict masked tokens share: masks on the rows, the masking collator, card rows.
    ``pad_values`` gives the pad value of each token-level field the objective's rows add (beyond ``labels``)."""

    pad_values: ClassVar[dict[str, int]] = {}

    def build_rows(
        self, tokenized: Dataset, tokenizer: PreTrainedTokenizerBase, *, split: str, max_seq_length: int,
        source: str, num_proc: int | None = None, short_seq_probability: float = 0.1,
    ) -> Dataset:
        rows = self.unmasked_rows(
            tokenized, tokenizer, split=split, max_seq_length=max_seq_length, source=source,
            short_seq_probability=short_seq_probability,
        )
        if split != "train":
            return mask_dataset(rows, tokenizer, self.masking, seed=self.seed, stream=Stream.VALIDATION_MASKS,
                                num_proc=num_proc)
        if self.args.masking == "static":
            return mask_dataset(rows, tokenizer, self.masking, duplication_factor=self.args.duplication_factor,
                                seed=self.seed, stream=Stream.STATIC_MASKS, num_proc=num_proc)
        return rows

    def unmasked_rows(
        self, tokenized: Dataset, tokenizer: PreTrainedTokenizerBase, *, split: str, max_seq_length: int,
        source: str, short_seq_probability: float,
    ) -> Dataset:
        """Packed sequences (``isolate_documents``: see :func:`pack_sequences`); objectives on pairs override it."""
        return pack_sequences(
            tokenized, tokenizer.cls_token_id, tokenizer.sep_token_id, max_seq_length, self.args.isolate_documents
        )

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForMaskedLM:
        return DataCollatorForMaskedLM(
            tokenizer, self.masking, isolate_documents=self.args.isolate_documents, seed=self.seed,
            pad_values=self.pad_values,
        )

    def step_metrics(self) -> StepMetrics:
        return MaskedLMMetrics()

    def card_rows(self) -> dict[str, Any]:
        args, masking = self.args, self.masking
        keep = 1 - masking.mask_replace_prob - masking.random_replace_prob
        return {
            "masking": args.masking + (f" (x{args.duplication_factor})" if args.masking == "static" else ""),
            "masking unit": masking.unit
            + (f" (geometric p={masking.span_geometric_p:g}, max {masking.max_span_length} words)"
               if masking.unit == "span" else ""),
            "mlm probability": masking.mlm_probability,
            "mask / random / keep": f"{masking.mask_replace_prob:.0%} / {masking.random_replace_prob:.0%} / {keep:.0%}",
            "packing": "documents isolated (block-diagonal attention, positions restart per document)"
            if args.isolate_documents else "full sentences (attention across the documents of a sequence)",
            "sparse MLM prediction": args.sparse_prediction,
        }


@register_objective
class MaskedLanguageModeling(MaskedObjective):
    """Masked LM alone on packed full-length rows (RoBERTa's FULL-SENTENCES); saves as ``BertForMaskedLM``."""

    name = "mlm"
    title = "masked LM"
    streams = True

    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> PreTrainedModel:
        return pool_token_mean(build_pretraining_model(
            model_args, tokenizer, with_nsp=False, max_seq_length=max_seq_length,
            sparse_prediction=self.args.sparse_prediction, isolate_documents=self.args.isolate_documents,
        ), model_args)


@register_objective
class MaskedLMWithNextSentence(MaskedObjective):
    """Masked LM + next-sentence prediction on ``[CLS] A [SEP] B [SEP]`` pairs (BERT); saves as
    ``BertForPreTraining``."""

    name = "mlm_nsp"
    title = "masked LM + next-sentence prediction"
    losses = ("mlm", "nsp")

    def __init__(self, args, seed, extra=None) -> None:
        if args.isolate_documents:
            raise HfPretrainError(
                "--isolate_documents packs documents for --objective mlm; NSP rows are single sentence pairs"
            )
        super().__init__(args, seed, extra)

    def unmasked_rows(self, tokenized, tokenizer, *, split, max_seq_length, source, short_seq_probability):
        return build_nsp_pairs(
            tokenized, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, max_seq_length=max_seq_length,
            short_seq_probability=short_seq_probability, seed=self.seed, source=f"{source} ({split})",
        )

    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> PreTrainedModel:
        model = build_pretraining_model(
            model_args, tokenizer, with_nsp=True, max_seq_length=max_seq_length,
            sparse_prediction=self.args.sparse_prediction, objective=self.name,
        )
        model.loss_weights = tuple(self.loss_weights.values())  # (MLM, sentence pair)
        return model

    def step_metrics(self) -> StepMetrics:
        return MaskedLMMetrics(pair=self.losses[1])

    def card_rows(self) -> dict[str, Any]:
        return {**super().card_rows(), "loss": self.loss_description()}
