"""ELECTRA replaced-token detection (Clark et al., 2020): packed rows masked by the masking collator, a generator
that fills the masks and a discriminator that finds them (the training model: :mod:`hf_pretrain.models.electra`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ..constants import IGNORE_INDEX
from ..errors import HfPretrainError
from ..models.architectures import Architecture, architecture_for, architecture_names
from ..models.arguments import ModelArguments
from ..models.electra import DISCRIMINATOR_WEIGHT, GENERATOR_SIZE, ReplacedTokenTraining, build_electra
from ..models.loading import build_config, resolve_model_type
from .base import StepMetrics
from .mlm import MaskedObjective, pool_token_mean
from .registry import register_objective


@dataclass
class ElectraArguments:
    """ELECTRA's generator and loss weighting; the discriminator's size comes from the ModelArguments flags."""

    generator_size: float = field(
        default=GENERATOR_SIZE,
        metadata={"help": "Generator width, heads and feed-forward size as a fraction of the discriminator's "
                  "(the paper finds 1/4 to 1/2 best)."},
    )
    discriminator_weight: float = field(
        default=DISCRIMINATOR_WEIGHT,
        metadata={"help": "λ in loss = generator MLM loss + λ · discriminator loss (paper: 50)."},
    )
    embedding_size: int | None = field(
        default=None, metadata={"help": "Width of the shared embeddings (ELECTRA-small: 128); hidden size if unset."}
    )

    def __post_init__(self) -> None:
        if not 0 < self.generator_size <= 1:
            raise HfPretrainError("--generator_size must be in (0, 1]")
        if self.discriminator_weight <= 0:
            raise HfPretrainError("--discriminator_weight must be positive")


class ReplacedTokenMetrics(StepMetrics):
    """Generator MLM accuracy; discriminator accuracy, precision, recall and F1 on replaced tokens; fraction replaced;
    and the two losses, averaged over the batches."""

    names = ("gen_correct", "masked", "disc_correct", "tokens", "true_pos", "pred_pos", "replaced",
             "gen_loss", "disc_loss", "batches")

    def count(self, outputs, inputs) -> torch.Tensor:
        labels = inputs["labels"]
        masked = labels != IGNORE_INDEX
        real = inputs["attention_mask"].bool() if "attention_mask" in inputs else torch.ones_like(masked)
        predicted = (outputs["discriminator_logits"] > 0)[real]
        replaced = outputs["replaced"].bool()[real]
        values = [
            (outputs["generator_predictions"] == labels[masked]).sum(), masked.sum(),
            (predicted == replaced).sum(), real.sum(),
            (predicted & replaced).sum(), predicted.sum(), replaced.sum(),
            outputs["generator_loss"], outputs["discriminator_loss"], torch.tensor(1),
        ]
        return torch.stack([torch.as_tensor(v).to(labels.device, torch.float64) for v in values])

    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        t = totals
        if not t["batches"]:
            return {}
        return {
            "generator_loss": t["gen_loss"] / t["batches"],
            "discriminator_loss": t["disc_loss"] / t["batches"],
            "generator_accuracy": t["gen_correct"] / max(t["masked"], 1),
            "discriminator_accuracy": t["disc_correct"] / max(t["tokens"], 1),
            "replaced_precision": t["true_pos"] / max(t["pred_pos"], 1),
            "replaced_recall": t["true_pos"] / max(t["replaced"], 1),
            # F1 = 2 TP / (predicted + actual): the harmonic mean of the two above, 0 when either is.
            "replaced_f1": 2 * t["true_pos"] / max(t["pred_pos"] + t["replaced"], 1),
            "replaced_fraction": t["replaced"] / max(t["tokens"], 1),
        }


@register_objective
class ReplacedTokenDetection(MaskedObjective):
    """ELECTRA: packed rows masked by the masking collator, a generator that fills the masks, a discriminator that
    finds them. Saves the discriminator as ``ElectraForPreTraining`` and the generator in ``generator/`` (on another
    backbone: the encoder as its stock base class, the discriminator in ``discriminator/``)."""

    name = "electra"
    title = "ELECTRA replaced-token detection"
    pipeline_tag = "token-classification"
    card_tags = ("discriminator", "pretraining")
    arguments_class = ElectraArguments
    default_model_type = "electra"
    backbone = "electra"  # the model type build_model trains
    losses = ("generator", "discriminator")
    streams = True

    def __init__(self, args, seed, extra: ElectraArguments | None = None) -> None:
        extra = extra or ElectraArguments()
        if "discriminator" in args.loss_weights and extra.discriminator_weight != DISCRIMINATOR_WEIGHT:
            raise HfPretrainError("--discriminator_weight and --objective_weights discriminator=... both set λ: "
                                  "pass one of them")
        super().__init__(args, seed, extra)

    def default_loss_weights(self) -> dict[str, float]:
        return {"generator": 1.0, "discriminator": self.extra.discriminator_weight}

    def check_model(self, model_args: ModelArguments) -> None:
        super().check_model(model_args)
        architecture = self.architecture(model_args)
        if self.extra.embedding_size is not None and architecture.model_type != "electra":
            raise HfPretrainError(f"--embedding_size narrows ELECTRA's shared embeddings; --model_type "
                                  f"{architecture.model_type} has no embedding projection: leave it unset")

    def architecture(self, model_args: ModelArguments) -> Architecture:
        """The registered architecture with a replaced-token detection class, or a one-line refusal."""
        if model_args.model_name_or_path:
            raise HfPretrainError("--objective electra trains from scratch; --model_name_or_path is not supported")
        model_type = resolve_model_type(model_args, self.default_model_type)
        architecture = architecture_for(model_type)
        if architecture is None or architecture.replaced_token_detection is None:
            raise HfPretrainError(
                f"--objective electra trains a generator and a discriminator, which hf_pretrain has for "
                f"{', '.join(architecture_names('replaced_token_detection'))}, not --model_type {model_type}"
            )
        return architecture

    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> ReplacedTokenTraining:
        architecture = self.architecture(model_args)
        config = build_config(model_args, tokenizer, max_seq_length, default_model_type="electra")
        electra: ElectraArguments = self.extra
        self.backbone = architecture.model_type
        if self.backbone == "electra":
            # Unset, the shared embeddings are as wide as the discriminator (ELECTRA-small narrows them to 128).
            config.embedding_size = electra.embedding_size or config.hidden_size
        else:
            # Another backbone exports its encoder as the stock base class (transformers has no ELECTRA head for
            # it), and the discriminator and generator in folders of their own.
            self.pipeline_tag = "feature-extraction"
        model = build_electra(
            config, architecture.replaced_token_detection, generator_size=electra.generator_size,
            discriminator_weight=self.loss_weights["discriminator"], generator_weight=self.loss_weights["generator"],
            sparse_prediction=self.args.sparse_prediction, seed=self.seed, match_weight=self.match_weight(),
        )
        # The discriminator's head reads every token and none reads [CLS]: the exported encoder is saved for
        # classifiers that pool the tokens' mean, as a masked LM's is.
        return pool_token_mean(model, model_args)

    def match_weight(self) -> float | None:
        """The token-matching loss's weight, or None: no matching head (``electra_match`` has one)."""
        return None

    def step_metrics(self) -> StepMetrics:
        return ReplacedTokenMetrics()

    def card_rows(self) -> dict[str, Any]:
        electra: ElectraArguments = self.extra
        if self.backbone == "electra":
            generator = (f"{electra.generator_size:g} of the discriminator's width, heads and feed-forward size, "
                         "same depth, in generator/")
        else:
            generator = (f"{electra.generator_size:g} of the discriminator's depth, same width, in generator/; the "
                         "discriminator (a one-label token classifier) in discriminator/, its encoder here")
        return {
            **super().card_rows(),
            "generator": generator,
            "loss": self.loss_description().replace("generator", "generator MLM", 1),
            "shared": "token, position and type embeddings" if self.backbone == "electra" else "token embeddings and their norm",
        }
