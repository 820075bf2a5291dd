"""ELECTRA replaced-token detection (Clark et al., 2020) as a ``PreTrainedModel`` the stock Trainer trains.

A small masked-LM generator fills the masked positions by *sampling* from its output distribution; the
discriminator sees the result and classifies every non-padding token as original or replaced. The two share their
embeddings (the paper's best setting), declared as tied weights, and are trained jointly on
``generator MLM loss + λ · discriminator loss``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, PreTrainedTokenizerBase
from transformers.models.electra.modeling_electra import ElectraDiscriminatorPredictions, ElectraModel
from transformers.utils import ModelOutput

from ..constants import IGNORE_INDEX
from ..errors import HfPretrainError
from ..models.arguments import ModelArguments
from ..models.attention import block_diagonal_attention_mask
from ..models.heads import predict_masked
from ..models.loading import build_config
from ..rng import Stream, torch_generator
from .base import StepMetrics
from .mlm import MaskedObjective
from .registry import register_objective

DISCRIMINATOR_WEIGHT = 50.0  # λ in the paper (section 3.1): the discriminator's loss is much smaller per token
GENERATOR_SIZE = 0.25  # the paper (section 3.2) finds generators 1/4 to 1/2 the discriminator's size best
# The parameters the generator takes from the discriminator: token, position and type embeddings and their norm.
SHARED_EMBEDDINGS = (
    "word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
    "LayerNorm.weight", "LayerNorm.bias",
)


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


def gumbel_sample(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row from ``softmax(logits)`` (Gumbel-max: argmax of logits plus Gumbel noise)."""
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-9, 1.0)
    return (logits.float() - torch.log(-torch.log(uniform))).argmax(-1)


def corrupt(
    input_ids: torch.Tensor, labels: torch.Tensor, sampled: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's input and labels: sampled tokens placed at the masked positions (``labels != -100``);
    a token is *replaced* (label 1) only where it differs from the original, so a correct sample counts as original.
    Padding is labelled 0 and ignored by the discriminator's loss through the attention mask."""
    masked = labels != IGNORE_INDEX
    original = torch.where(masked, labels, input_ids)
    corrupted = original.clone()
    corrupted[masked] = sampled
    replaced = corrupted != original
    if attention_mask is not None:
        replaced &= attention_mask.bool()
    return corrupted, replaced.long()


@dataclass
class ReplacedTokenDetectionOutput(ModelOutput):
    """Losses and the small tensors the metrics need (never the vocabulary-sized generator logits)."""

    loss: torch.Tensor | None = None
    generator_loss: torch.Tensor | None = None
    discriminator_loss: torch.Tensor | None = None
    generator_predictions: torch.Tensor | None = None  # (n_masked,) argmax at the masked positions
    discriminator_logits: torch.Tensor | None = None  # (batch, seq)
    replaced: torch.Tensor | None = None  # (batch, seq) the discriminator's labels


def generator_config(config: ElectraConfig, generator_size: float) -> ElectraConfig:
    """The generator's config: the discriminator's depth and embeddings, ``generator_size`` of its width, heads
    and feed-forward size."""
    heads = max(1, round(config.num_attention_heads * generator_size))
    hidden = max(heads, round(config.hidden_size * generator_size / heads) * heads)
    values = config.to_dict()
    for key in ("architectures", "generator_size", "discriminator_weight", "model_type", "transformers_version"):
        values.pop(key, None)
    values.update(hidden_size=hidden, num_attention_heads=heads,
                  intermediate_size=max(1, round(config.intermediate_size * generator_size)))
    return ElectraConfig(**values)


class ElectraForReplacedTokenDetection(ElectraForPreTraining):
    """The discriminator (``ElectraForPreTraining``: its ``electra`` encoder and ``discriminator_predictions`` head,
    under the stock parameter names) with a ``generator`` (``ElectraForMaskedLM``) that shares its embeddings.

    The config is the discriminator's, plus ``generator_size`` and ``discriminator_weight``. The shared
    parameters are declared in ``_tied_weights_keys``, so transformers ties them at init and on load, and saves
    them once. A checkpoint holds both models (the Trainer resumes from it); ``export_parts`` makes
    ``save_pretrained`` write the discriminator as a plain ``ElectraForPreTraining`` folder and the generator as an
    ``ElectraForMaskedLM`` folder in ``generator/`` (what the final save does, through ``trainer.save_model()``).

    ``sampling_seed`` drives the generator's sampling through an explicit ``torch.Generator``: keyed by the batch's
    ``sequence_id`` when given (so a resumed run samples as an uninterrupted one), else one stream per process.
    ``sparse_prediction`` runs the generator's vocabulary projection at the masked positions only. ``document_ids``
    (from a collator with ``isolate_documents``) keep packed documents from attending to each other in both models.
    """

    _tied_weights_keys = {
        **{f"generator.electra.embeddings.{name}": f"electra.embeddings.{name}" for name in SHARED_EMBEDDINGS},
        "generator.generator_lm_head.weight": "electra.embeddings.word_embeddings.weight",
    }
    # The losses are batch means: Trainer averages them over gradient-accumulation steps itself.
    accepts_loss_kwargs = False

    def __init__(self, config: ElectraConfig) -> None:
        # ElectraForPreTraining's own __init__ would tie weights before the generator exists: build its two
        # modules here, then the generator, then let post_init tie and initialize the whole.
        super(ElectraForPreTraining, self).__init__(config)
        self.electra = ElectraModel(config)
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config)
        self.generator = ElectraForMaskedLM(generator_config(config, config.generator_size))
        self.discriminator_weight = config.discriminator_weight
        self.generator_weight = 1.0  # --objective_weights generator=...; a training setting, not in the config
        self.sampling_seed = 0
        self.sparse_prediction = True
        self.export_parts = False
        self._running_sampler: torch.Generator | None = None
        self.post_init()

    def _sampling_generator(self, device: torch.device, sequence_id: torch.Tensor | None) -> torch.Generator:
        if sequence_id is not None:  # keyed by the batch, as the collator's masks: a resumed run samples the same
            return torch_generator(Stream.GENERATOR_SAMPLING, self.sampling_seed, *sequence_id.tolist(), device=device)
        if self._running_sampler is None or self._running_sampler.device != device:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            self._running_sampler = torch_generator(
                Stream.GENERATOR_SAMPLING_RUNNING, self.sampling_seed, rank, device=device
            )
        return self._running_sampler

    def forward(
        self, input_ids=None, labels=None, attention_mask=None, token_type_ids=None, position_ids=None,
        document_ids=None, sequence_id=None, **kwargs,
    ) -> ReplacedTokenDetectionOutput:
        encoder_mask = attention_mask
        if document_ids is not None:
            encoder_mask = block_diagonal_attention_mask(
                document_ids, attention_mask, self.config, self.get_input_embeddings().weight.dtype
            )
        encoder_inputs = dict(attention_mask=encoder_mask, token_type_ids=token_type_ids, position_ids=position_ids)

        generator = self.generator
        hidden = generator.electra(input_ids, **encoder_inputs).last_hidden_state
        logits, generator_loss = predict_masked(
            lambda h: generator.generator_lm_head(generator.generator_predictions(h)),
            hidden, labels, self.sparse_prediction,
        )
        masked = labels != IGNORE_INDEX
        masked_logits = logits.detach() if self.sparse_prediction else logits.detach()[masked]  # (n_masked, vocab)
        # No gradient flows through the sampling (the paper trains the generator by MLM only).
        sampled = gumbel_sample(masked_logits, self._sampling_generator(input_ids.device, sequence_id))
        corrupted, replaced = corrupt(input_ids, labels, sampled, attention_mask)

        hidden = self.electra(corrupted, **encoder_inputs).last_hidden_state
        discriminator_logits = self.discriminator_predictions(hidden)  # (batch, seq)
        real = attention_mask.bool() if attention_mask is not None else torch.ones_like(replaced, dtype=torch.bool)
        discriminator_loss = nn.functional.binary_cross_entropy_with_logits(
            discriminator_logits[real].float(), replaced[real].float()
        )
        return ReplacedTokenDetectionOutput(
            loss=self.generator_weight * generator_loss + self.discriminator_weight * discriminator_loss,
            generator_loss=generator_loss.detach(),
            discriminator_loss=discriminator_loss.detach(),
            generator_predictions=masked_logits.argmax(-1),
            discriminator_logits=discriminator_logits.detach(),
            replaced=replaced,
        )

    def discriminator_parameters(self) -> int:
        """Parameters of the discriminator alone (what the exported root folder holds)."""
        generator_only = {id(p) for p in self.generator.parameters()} - {id(p) for p in self.electra.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in generator_only)

    def save_pretrained(self, save_directory, *args, state_dict=None, is_main_process: bool = True, **kwargs):
        """A checkpoint of both models, or (``export_parts``) the two stock folders. ``state_dict`` is what the
        Trainer gathered (from FSDP or DeepSpeed shards); without it, this process's own."""
        if not self.export_parts:
            return super().save_pretrained(
                save_directory, *args, state_dict=state_dict, is_main_process=is_main_process, **kwargs
            )
        state = state_dict if state_dict is not None else self.state_dict()
        discriminator = {k: v for k, v in state.items() if not k.startswith("generator.")}
        generator = {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")}
        for name in SHARED_EMBEDDINGS:  # tied in the checkpoint, stored in each exported folder
            generator[f"electra.embeddings.{name}"] = discriminator[f"electra.embeddings.{name}"]
        super().save_pretrained(
            save_directory, *args, state_dict=discriminator, is_main_process=is_main_process, **kwargs
        )
        self.generator.save_pretrained(
            os.path.join(save_directory, "generator"), *args, state_dict=generator, is_main_process=is_main_process,
            **kwargs,
        )
        if is_main_process:  # the root folder is a plain discriminator: stock class, no training-only settings
            path = os.path.join(save_directory, "config.json")
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            for key in ("generator_size", "discriminator_weight"):
                saved.pop(key, None)
            saved["architectures"] = [ElectraForPreTraining.__name__]
            with open(path, "w", encoding="utf-8") as f:
                json.dump(saved, f, indent=2, sort_keys=True)
                f.write("\n")


def build_electra(
    config: ElectraConfig,
    *,
    generator_size: float = GENERATOR_SIZE,
    discriminator_weight: float = DISCRIMINATOR_WEIGHT,
    generator_weight: float = 1.0,
    sparse_prediction: bool = True,
    seed: int = 0,
) -> ElectraForReplacedTokenDetection:
    """A fresh discriminator of ``config`` and its generator: the discriminator's depth and ``generator_size`` of its
    width, heads and feed-forward size. Loss: ``generator_weight`` x generator MLM + ``discriminator_weight`` x
    discriminator."""
    config.generator_size = generator_size
    config.discriminator_weight = discriminator_weight
    model = ElectraForReplacedTokenDetection(config)
    model.generator_weight = generator_weight
    model.sampling_seed = seed
    model.sparse_prediction = sparse_prediction
    return model


class ReplacedTokenMetrics(StepMetrics):
    """Generator MLM accuracy; discriminator accuracy, precision and recall on replaced tokens; fraction replaced;
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
            "replaced_fraction": t["replaced"] / max(t["tokens"], 1),
        }


@register_objective
class ReplacedTokenDetection(MaskedObjective):
    """ELECTRA: packed rows masked by the masking collator, a generator that fills the masks, a discriminator that
    finds them. Saves the discriminator as ``ElectraForPreTraining`` and the generator in ``generator/``."""

    name = "electra"
    title = "ELECTRA replaced-token detection"
    pipeline_tag = "token-classification"
    card_tags = ("discriminator", "pretraining")
    arguments_class = ElectraArguments
    default_model_type = "electra"
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

    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> ElectraForReplacedTokenDetection:
        if model_args.model_name_or_path:
            raise HfPretrainError("--objective electra trains from scratch; --model_name_or_path is not supported")
        if model_args.model_type not in (None, "electra"):
            raise HfPretrainError(f"--objective electra trains ELECTRA models, not --model_type {model_args.model_type}")
        config = build_config(model_args, tokenizer, max_seq_length, default_model_type="electra")
        electra: ElectraArguments = self.extra
        # Unset, the shared embeddings are as wide as the discriminator (ELECTRA-small narrows them to 128).
        config.embedding_size = electra.embedding_size or config.hidden_size
        return build_electra(
            config, generator_size=electra.generator_size, discriminator_weight=self.loss_weights["discriminator"],
            generator_weight=self.loss_weights["generator"], sparse_prediction=self.args.sparse_prediction,
            seed=self.seed,
        )

    def step_metrics(self) -> StepMetrics:
        return ReplacedTokenMetrics()

    def save(self, trainer, output_dir: str) -> None:
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.export_parts = True
        try:
            trainer.save_model(output_dir)
        finally:
            model.export_parts = False
        if trainer.is_world_process_zero():
            trainer.processing_class.save_pretrained(os.path.join(output_dir, "generator"))

    def saved_parameters(self, model: ElectraForReplacedTokenDetection) -> int:
        return model.discriminator_parameters()

    def card_rows(self) -> dict[str, Any]:
        electra: ElectraArguments = self.extra
        return {
            **super().card_rows(),
            "generator": f"{electra.generator_size:g} of the discriminator's width, heads and feed-forward size, "
            "same depth, in generator/",
            "loss": self.loss_description().replace("generator", "generator MLM", 1),
            "shared": "token, position and type embeddings",
        }
