"""Masked LM + sentence-order prediction (ALBERT, Lan et al., 2020): two consecutive segments of one document, in
order or swapped, trained through BERT's two-way sentence-pair head with SOP labels. The checkpoint is a standard
``BertForPreTraining`` whose pair head predicts order."""

from __future__ import annotations

from ..data.pairs import build_sop_pairs
from .mlm import MaskedLMWithNextSentence
from .registry import register_objective


@register_objective
class MaskedLMWithSentenceOrder(MaskedLMWithNextSentence):
    """``mlm_sop``: the rows of :func:`build_sop_pairs`, everything else as ``mlm_nsp``."""

    name = "mlm_sop"
    title = "masked LM + sentence-order prediction"
    losses = ("mlm", "sop")

    def unmasked_rows(self, tokenized, tokenizer, *, split, max_seq_length, source, short_seq_probability):
        return build_sop_pairs(
            tokenized, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, max_seq_length=max_seq_length,
            short_seq_probability=short_seq_probability, seed=self.seed, source=f"{source} ({split})",
        )
