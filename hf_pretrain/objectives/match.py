"""Masked LM + cross-segment token matching: ``--objective mlm_match``.

Rows are sentence pairs whose second segment is usually an edited copy of the first
(:func:`hf_pretrain.data.pairs.build_match_pairs`); besides predicting the masked tokens, the model says for each
other token whether the other segment holds it (:mod:`hf_pretrain.models.token_match`). Measured on this project's
budget: masked LM alone, NSP, SOP, SBO and ELECTRA all left MRPC at random init's level after 30 CPU minutes, since
none of them needs attention across two segments to be learned early; this does. The exported checkpoint is the
stock masked-LM class; its config pools by the mean of the tokens for sequence classification where the
architecture has that choice (ModernBERT's ``classifier_pooling``), since the matching head reads every token.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..constants import IGNORE_INDEX
from ..data.pairs import build_match_pairs, pack_pairs
from ..errors import HfPretrainError
from ..models.arguments import ModelArguments
from ..models.loading import build_pretraining_model
from ..models.token_match import TokenMatchTraining
from .base import StepMetrics
from .masking import word_start_table
from .metrics import TokenMatchMetrics
from .mlm import MaskedObjective, pool_token_mean
from .registry import register_objective


class TokenMatchRows:
    """Mixed before a masked objective: its rows are token-matching pairs (``match_labels`` beside the tokens),
    packed several to a row with ``--isolate_documents``."""

    pad_values = {"match_labels": IGNORE_INDEX}  # a padded token is not scored

    def unmasked_rows(self, tokenized, tokenizer, *, split, max_seq_length, source, short_seq_probability):
        try:
            word_starts = word_start_table(tokenizer).numpy()  # (vocab,) bool
        except ValueError as err:
            raise HfPretrainError(f"--objective {self.name}: {err}") from None
        pairs = build_match_pairs(
            tokenized, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
            word_starts=word_starts, max_seq_length=max_seq_length, seed=self.seed,
            source=f"{source} ({split})",
        )
        # --isolate_documents: several whole pairs per row, each attending to itself only (short pairs padded alone
        # leave most of a row to padding).
        return pack_pairs(pairs, max_seq_length) if self.args.isolate_documents else pairs

    @staticmethod
    def token_match_row(source: str, exported: str) -> str:
        """The model card's "token matching" row: the head reads ``source``; where it is: ``exported``."""
        return (f"each unmasked token of a sentence pair (the second often an edited copy of the first) classified "
                f"from {source} as present in the other segment or not (training only: the head is {exported})")

    def packing_row(self) -> str:
        """The model card's "packing" row."""
        return ("several whole pairs per row, each attending to itself only" if self.args.isolate_documents
                else "one pair per row, padded")


@register_objective
class MaskedLMWithTokenMatch(TokenMatchRows, MaskedObjective):
    """``mlm_match``: token-matching pairs, MLM + matching losses (``--objective_weights mlm=1,match=1``)."""

    name = "mlm_match"
    title = "masked LM + cross-segment token matching"
    losses = ("mlm", "match")

    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> PreTrainedModel:
        model = build_pretraining_model(
            model_args, tokenizer, with_nsp=False, max_seq_length=max_seq_length,
            sparse_prediction=self.args.sparse_prediction, isolate_documents=self.args.isolate_documents,
            objective=self.name, training_modules=TokenMatchTraining,
        )
        model.loss_weights = tuple(self.loss_weights.values())  # (MLM, match)
        return pool_token_mean(model, model_args)

    def step_metrics(self) -> StepMetrics:
        return TokenMatchMetrics()

    def card_rows(self) -> dict[str, Any]:
        rows = {**super().card_rows(), "loss": self.loss_description(),
                "token matching": self.token_match_row("the encoder's output", "not in this checkpoint")}
        rows["packing"] = self.packing_row()
        return rows
