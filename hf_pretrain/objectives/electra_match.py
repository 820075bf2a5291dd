"""ELECTRA + cross-segment token matching: ``--objective electra_match``.

Replaced-token detection on the token-matching pairs of ``mlm_match`` (:mod:`.match`), with the matching head on the
discriminator's output beside its replaced-token head. Measured on this project's budget, ELECTRA alone fine-tunes
below masked LM on GLUE, STS-B most of all, and token matching is what lifted masked LM's STS-B and MRPC
(``budget_match``): the discriminator, which reads every token, gets the same reason to attend across a pair's two
segments. The export is ELECTRA's (:mod:`.electra`); the matching head is training-only and in no exported folder.
"""

from __future__ import annotations

from typing import Any

from .base import StepMetrics
from .electra import ReplacedTokenDetection, ReplacedTokenMetrics
from .match import TokenMatchRows
from .metrics import WithTokenMatch
from .registry import register_objective


class ReplacedTokenMatchMetrics(WithTokenMatch, ReplacedTokenMetrics):
    """ELECTRA's metrics, plus the token-matching head's ``match_loss`` and ``match_accuracy``."""

    names = (*ReplacedTokenMetrics.names, *WithTokenMatch.MATCH_NAMES)


@register_objective
class ReplacedTokenDetectionWithMatch(TokenMatchRows, ReplacedTokenDetection):
    """``electra_match``: token-matching pairs; generator MLM + λ x replaced-token detection + matching, the
    matching weighted as the detection by default (both are one binary decision per token of the same encoder;
    ``--objective_weights match=...`` to change it)."""

    name = "electra_match"
    title = "ELECTRA replaced-token detection + cross-segment token matching"
    losses = ("generator", "discriminator", "match")
    streams = False  # pairs are built from whole documents

    def default_loss_weights(self) -> dict[str, float]:
        weights = super().default_loss_weights()
        return {**weights, "match": weights["discriminator"]}

    def match_weight(self) -> float | None:
        return self.loss_weights["match"]

    def step_metrics(self) -> StepMetrics:
        return ReplacedTokenMatchMetrics()

    def card_rows(self) -> dict[str, Any]:
        return {**super().card_rows(), "packing": self.packing_row(),
                "token matching": self.token_match_row("the discriminator's output", "in no exported folder")}
