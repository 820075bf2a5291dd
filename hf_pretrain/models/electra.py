"""ELECTRA's training model (Clark et al., 2020): a small masked-LM generator fills the masked positions by
*sampling* from its output distribution; the discriminator sees the result and classifies every non-padding token
as original or replaced. The two share their embeddings (the paper's best setting), declared as tied weights, and
are trained jointly on ``generator MLM loss + λ · discriminator loss``. :class:`ReplacedTokenTraining` is that step
for any backbone; :class:`ElectraForReplacedTokenDetection` is ELECTRA's own, which exports as two stock folders: the
discriminator (``ElectraForPreTraining``) and, in ``generator/``, the generator (``ElectraForMaskedLM``). Another
backbone's lives with its architecture (ModernBERT's: :mod:`.architectures.modernbert`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, PretrainedConfig
from transformers.models.electra.modeling_electra import ElectraDiscriminatorPredictions, ElectraModel
from transformers.utils import ModelOutput

from ..constants import IGNORE_INDEX
from ..rng import Stream, torch_generator
from .attention import block_diagonal_attention_mask
from .export import REMOVED, ExportedPart, ExportsStock, stock_config
from .heads import predict_masked
from .token_match import score_matches

DISCRIMINATOR_WEIGHT = 50.0  # λ in the paper (section 3.1): the discriminator's loss is much smaller per token
GENERATOR_SIZE = 0.25  # the paper (section 3.2) finds generators 1/4 to 1/2 the discriminator's size best
# The parameters the generator takes from the discriminator: token, position and type embeddings and their norm.
SHARED_EMBEDDINGS = (
    "word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
    "LayerNorm.weight", "LayerNorm.bias",
)


def sample_tokens(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row from ``softmax(logits)``, by inverting each row's cumulative distribution at one uniform.

    Not Gumbel-max: that draws a uniform and takes two logarithms for every vocabulary entry of every masked token,
    which measured a fifth of an ELECTRA step on one CPU core; one exponential, a running sum and a binary search per
    row do it 2.6x faster (tokens under about 1e-7 of their row's mass, below fp32's resolution of the sum, are never
    drawn)."""
    weights = logits.to(torch.float32, copy=True)  # the sum is taken in place; the caller still reads the logits
    weights = weights.sub_(weights.amax(-1, keepdim=True)).exp_().cumsum_(-1)
    uniform = torch.rand((weights.shape[0], 1), generator=generator, device=weights.device)
    drawn = torch.searchsorted(weights, uniform * weights[:, -1:], right=True).squeeze(-1)
    return drawn.clamp_(max=weights.shape[-1] - 1)


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
    # With token matching (--objective electra_match): the matching head's mean loss, right answers and count.
    match_loss: torch.Tensor | None = None
    match_correct: torch.Tensor | None = None
    match_total: torch.Tensor | None = None


def generator_config(config: ElectraConfig, generator_size: float) -> ElectraConfig:
    """The generator's config: the discriminator's depth, embeddings and attention implementation,
    ``generator_size`` of its width, heads and feed-forward size."""
    heads = max(1, round(config.num_attention_heads * generator_size))
    hidden = max(heads, round(config.hidden_size * generator_size / heads) * heads)
    values = config.to_dict()
    for key in ("architectures", "generator_size", "discriminator_weight", "token_match", "model_type",
                "transformers_version"):
        values.pop(key, None)
    values.update(hidden_size=hidden, num_attention_heads=heads,
                  intermediate_size=max(1, round(config.intermediate_size * generator_size)))
    generator = ElectraConfig(**values)
    generator._attn_implementation = config._attn_implementation  # not in to_dict(): --attn_implementation
    return generator


class ReplacedTokenTraining(ExportsStock):
    """The training step of replaced-token detection, mixed into a training model that holds a discriminator (the
    stock class it derives from) and a ``generator`` (a stock masked LM) sharing its embeddings. A backbone names how
    each of the two encodes (:meth:`generator_logits`, :meth:`discriminator_logits`) and how packed documents are
    kept apart (:meth:`encoder_inputs`); sampling, corruption and the joint loss are the same for every backbone.

    ``sampling_seed`` drives the generator's sampling through an explicit ``torch.Generator``: keyed by the batch's
    ``sequence_id`` when given (so a resumed run samples as an uninterrupted one), else one stream per process.
    ``sparse_prediction`` runs the generator's vocabulary projection at the masked positions only. ``document_ids``
    (from a collator with ``isolate_documents``) keep packed documents from attending to each other in both models.
    """

    # The losses are batch means: Trainer averages them over gradient-accumulation steps itself.
    accepts_loss_kwargs = False
    # Config fields of the training model only (the generator's size, λ, token matching): the exported configs go
    # without them.
    training_only_config = {"generator_size": REMOVED, "discriminator_weight": REMOVED, "token_match": REMOVED}
    # The token-matching head (config.token_match): training-only, left out of every exported folder.
    training_only_modules = ("match_head",)

    def init_training_state(self, config: PretrainedConfig) -> None:
        self.discriminator_weight = config.discriminator_weight
        self.generator_weight = 1.0  # --objective_weights generator=...; a training setting, not in the config
        self.match_weight = 1.0  # --objective_weights match=... (with token matching)
        # Token matching beside replaced-token detection (--objective electra_match): a linear head on the
        # discriminator's output says for each token whether the pair's other segment holds it
        # (:mod:`.token_match`); made before post_init, which initializes it.
        self.match_head = nn.Linear(config.hidden_size, 1) if getattr(config, "token_match", False) else None
        self.sampling_seed = 0
        self.sparse_prediction = True
        self._running_sampler: torch.Generator | None = None

    def encoder_inputs(self, attention_mask, token_type_ids, position_ids, document_ids) -> dict[str, Any]:
        raise NotImplementedError

    def generator_logits(self, input_ids, labels, encoder_inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's logits (at the masked positions only, with sparse prediction) and its MLM loss."""
        raise NotImplementedError

    def discriminator_hidden(self, input_ids, encoder_inputs) -> torch.Tensor:
        """The discriminator's encoder output, ``(batch, seq, hidden)``."""
        raise NotImplementedError

    def discriminator_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The discriminator's head on its encoder output: one logit per token, positive for *replaced*."""
        raise NotImplementedError

    def discriminator_logits(self, input_ids, encoder_inputs) -> torch.Tensor:
        """One logit per token, ``(batch, seq)``: positive for *replaced*."""
        return self.discriminator_head(self.discriminator_hidden(input_ids, encoder_inputs))

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
        # Token matching's labels (electra_match) come through kwargs, not the signature: Trainer takes every
        # argument named like a label as one it needs before it computes an evaluation loss, and plain ELECTRA's
        # batches have none.
        match_labels = kwargs.pop("match_labels", None)
        encoder_inputs = self.encoder_inputs(attention_mask, token_type_ids, position_ids, document_ids)
        logits, generator_loss = self.generator_logits(input_ids, labels, encoder_inputs)
        masked = labels != IGNORE_INDEX
        masked_logits = logits.detach() if self.sparse_prediction else logits.detach()[masked]  # (n_masked, vocab)
        # No gradient flows through the sampling (the paper trains the generator by MLM only).
        sampled = sample_tokens(masked_logits, self._sampling_generator(input_ids.device, sequence_id))
        corrupted, replaced = corrupt(input_ids, labels, sampled, attention_mask)

        hidden = self.discriminator_hidden(corrupted, encoder_inputs)
        discriminator_logits = self.discriminator_head(hidden)
        real = attention_mask.bool() if attention_mask is not None else torch.ones_like(replaced, dtype=torch.bool)
        discriminator_loss = nn.functional.binary_cross_entropy_with_logits(
            discriminator_logits[real].float(), replaced[real].float()
        )
        loss = self.generator_weight * generator_loss + self.discriminator_weight * discriminator_loss
        match = {}
        if self.match_head is not None and match_labels is not None:
            # Scored at the tokens the generator did not touch (the unmasked ones), from the corrupted pair the
            # discriminator reads: a replaced token in the other segment can make a label stale, at most the
            # masking rate's share of them.
            score = score_matches(self.match_head, hidden, match_labels, labels)
            loss = loss + self.match_weight * score.loss
            match = dict(match_loss=score.loss.detach(), match_correct=score.correct, match_total=score.total)
        return ReplacedTokenDetectionOutput(
            loss=loss,
            generator_loss=generator_loss.detach(),
            discriminator_loss=discriminator_loss.detach(),
            generator_predictions=masked_logits.argmax(-1),
            discriminator_logits=discriminator_logits.detach(),
            replaced=replaced,
            **match,
        )


class ElectraForReplacedTokenDetection(ReplacedTokenTraining, ElectraForPreTraining):
    """The discriminator (``ElectraForPreTraining``: its ``electra`` encoder and ``discriminator_predictions`` head,
    under the stock parameter names) with a ``generator`` (``ElectraForMaskedLM``) that shares its embeddings.

    The config is the discriminator's, plus ``generator_size`` and ``discriminator_weight``. The shared
    parameters are declared in ``_tied_weights_keys``, so transformers ties them at init and on load, and saves
    them once. A checkpoint holds both models (the Trainer resumes from it); the export (:meth:`exported_parts`)
    is the discriminator as a plain ``ElectraForPreTraining`` folder and the generator as an ``ElectraForMaskedLM``
    folder in ``generator/``.
    """

    _tied_weights_keys = {
        **{f"generator.electra.embeddings.{name}": f"electra.embeddings.{name}" for name in SHARED_EMBEDDINGS},
        "generator.generator_lm_head.weight": "electra.embeddings.word_embeddings.weight",
    }

    def __init__(self, config: ElectraConfig) -> None:
        # ElectraForPreTraining's own __init__ would tie weights before the generator exists: build its two
        # modules here, then the generator, then let post_init tie and initialize the whole.
        super(ElectraForPreTraining, self).__init__(config)
        self.electra = ElectraModel(config)
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config)
        self.generator = ElectraForMaskedLM(generator_config(config, config.generator_size))
        self.init_training_state(config)
        self.post_init()

    def encoder_inputs(self, attention_mask, token_type_ids, position_ids, document_ids) -> dict[str, Any]:
        if document_ids is not None:
            attention_mask = block_diagonal_attention_mask(
                document_ids, attention_mask, self.config, self.get_input_embeddings().weight.dtype
            )
        return dict(attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids)

    def generator_logits(self, input_ids, labels, encoder_inputs):
        generator = self.generator
        hidden = generator.electra(input_ids, **encoder_inputs).last_hidden_state
        logits, loss, _ = predict_masked(lambda h: generator.generator_lm_head(generator.generator_predictions(h)),
                                         hidden, labels, self.sparse_prediction)
        return logits, loss

    def discriminator_hidden(self, input_ids, encoder_inputs):
        return self.electra(input_ids, **encoder_inputs).last_hidden_state

    def discriminator_head(self, hidden):
        return self.discriminator_predictions(hidden)

    def exported_parts(self) -> list[ExportedPart]:
        # The shared embeddings are stored once in a checkpoint, and in each exported folder.
        shared = {f"electra.embeddings.{name}": f"electra.embeddings.{name}" for name in SHARED_EMBEDDINGS}
        return [
            ExportedPart(ElectraForPreTraining, stock_config(self.config, self.training_only_config),
                         leave_out=("generator.", "match_head.")),
            ExportedPart(ElectraForMaskedLM, self.generator.config, folder="generator", prefix="generator.",
                         shared=shared),
        ]


def build_electra(
    config: PretrainedConfig,
    model_class: type[ReplacedTokenTraining] | None = None,
    *,
    generator_size: float = GENERATOR_SIZE,
    discriminator_weight: float = DISCRIMINATOR_WEIGHT,
    generator_weight: float = 1.0,
    sparse_prediction: bool = True,
    seed: int = 0,
    match_weight: float | None = None,
) -> ReplacedTokenTraining:
    """A fresh discriminator of ``config`` and its generator, ``generator_size`` of its size (ELECTRA's: of its
    width, heads and feed-forward size; a backbone without an embedding projection's: of its depth). Loss: ``generator_weight`` x generator MLM + ``discriminator_weight`` x
    discriminator (+ ``match_weight`` x token matching, with a matching head, where given)."""
    config.generator_size = generator_size
    config.discriminator_weight = discriminator_weight
    if match_weight is not None:
        config.token_match = True
    model = (model_class or ElectraForReplacedTokenDetection)(config)
    model.generator_weight = generator_weight
    model.match_weight = 1.0 if match_weight is None else match_weight
    model.sampling_seed = seed
    model.sparse_prediction = sparse_prediction
    return model
