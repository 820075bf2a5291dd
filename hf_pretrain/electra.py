"""ELECTRA replaced-token detection (Clark et al., 2020) as a model the stock Trainer trains.

A small masked-LM generator fills the masked positions by *sampling* from its output distribution; the
discriminator sees the result and classifies every non-padding token as original or replaced. The two share their
embeddings (the paper's best setting) and are trained jointly on ``generator MLM loss + λ · discriminator loss``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining
from transformers.utils import ModelOutput

from .masking import IGNORE_INDEX, derive_seed
from .modeling import block_diagonal_attention_mask, predict_masked
from .training import StepMetrics

GUMBEL_STREAM = 2**32 + 1  # keeps the sampling noise apart from the masks keyed by the same sequence ids
DISCRIMINATOR_WEIGHT = 50.0  # λ in the paper (section 3.1): the discriminator's loss is much smaller per token


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


class ElectraForReplacedTokenDetection(nn.Module):
    """Generator + discriminator with shared embeddings; ``forward`` returns the combined ELECTRA loss.

    ``seed`` drives the generator's sampling through an explicit ``torch.Generator``: keyed by the batch's
    ``sequence_id`` when given (so a resumed run samples as an uninterrupted one), else one stream per process.
    ``sparse_prediction`` runs the generator's vocabulary projection at the masked positions only (the only ones
    it samples or is scored at). ``document_ids`` (from a collator with ``isolate_documents``) keep packed
    documents from attending to each other in both models.
    After training, ``discriminator`` and ``generator`` are standard ``ElectraForPreTraining`` and
    ``ElectraForMaskedLM`` models to ``save_pretrained``.
    """

    def __init__(
        self,
        generator: ElectraForMaskedLM,
        discriminator: ElectraForPreTraining,
        discriminator_weight: float = DISCRIMINATOR_WEIGHT,
        seed: int = 0,
        sparse_prediction: bool = True,
    ) -> None:
        super().__init__()
        if generator.config.embedding_size != discriminator.config.embedding_size:
            raise ValueError("generator and discriminator must have the same embedding_size to share embeddings")
        if generator.config.vocab_size != discriminator.config.vocab_size:
            raise ValueError("generator and discriminator must have the same vocabulary")
        # Token, position and type embeddings are one module; the generator's output layer stays tied to them.
        generator.electra.embeddings = discriminator.electra.embeddings
        generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
        self.generator, self.discriminator = generator, discriminator
        self.config = discriminator.config  # what Trainer and the model card read
        self.discriminator_weight = discriminator_weight
        self.seed = seed
        self.sparse_prediction = sparse_prediction
        self._sampler: torch.Generator | None = None
        # The generator's copies of shared tensors: left out of checkpoints (safetensors refuses aliases) and
        # named here so that Trainer, when it resumes, knows their absence is expected.
        self._keys_to_ignore_on_save = [
            key for key in super().state_dict()
            if key.startswith("generator.electra.embeddings.") or key == "generator.generator_lm_head.weight"
        ]

    def _sampling_generator(self, device: torch.device, sequence_id: torch.Tensor | None) -> torch.Generator:
        if sequence_id is not None:  # keyed by the batch, as the collator's masks: a resumed run samples the same
            return torch.Generator(device=device).manual_seed(
                derive_seed(GUMBEL_STREAM, self.seed, *sequence_id.tolist())
            )
        if self._sampler is None or self._sampler.device != device:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            self._sampler = torch.Generator(device=device).manual_seed(derive_seed(self.seed, rank))
        return self._sampler

    def forward(
        self, input_ids, labels, attention_mask=None, token_type_ids=None, position_ids=None, document_ids=None,
        sequence_id=None,
    ) -> ReplacedTokenDetectionOutput:
        encoder_mask = attention_mask
        if document_ids is not None:
            encoder_mask = block_diagonal_attention_mask(document_ids, attention_mask, self.config._attn_implementation)
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

        discriminator_logits = self.discriminator(input_ids=corrupted, **encoder_inputs).logits  # (batch, seq)
        real = attention_mask.bool() if attention_mask is not None else torch.ones_like(replaced, dtype=torch.bool)
        discriminator_loss = nn.functional.binary_cross_entropy_with_logits(
            discriminator_logits[real].float(), replaced[real].float()
        )
        return ReplacedTokenDetectionOutput(
            loss=generator_loss + self.discriminator_weight * discriminator_loss,
            generator_loss=generator_loss.detach(),
            discriminator_loss=discriminator_loss.detach(),
            generator_predictions=masked_logits.argmax(-1),
            discriminator_logits=discriminator_logits.detach(),
            replaced=replaced,
        )

    def state_dict(self, *args, **kwargs):
        """Shared tensors once, under the discriminator; loading its copy restores the generator's too."""
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        for key in self._keys_to_ignore_on_save:
            state.pop(prefix + key, None)
        return state

    def tie_weights(self) -> None:
        """Re-point the generator's output layer at the shared word embeddings (called by Trainer on resume)."""
        self.generator.generator_lm_head.weight = self.discriminator.electra.embeddings.word_embeddings.weight

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameters of both models, shared ones counted once (the signature Trainer calls)."""
        embeddings = {id(p) for p in self.discriminator.electra.embeddings.parameters()} if exclude_embeddings else set()
        return sum(
            p.numel() for p in self.parameters()
            if id(p) not in embeddings and (p.requires_grad or not only_trainable)
        )


def build_electra(
    *,
    vocab_size: int,
    pad_token_id: int,
    hidden_size: int,
    num_hidden_layers: int,
    num_attention_heads: int,
    intermediate_size: int,
    embedding_size: int | None = None,
    generator_size: float = 0.25,
    max_position_embeddings: int = 512,
    hidden_dropout_prob: float = 0.1,
    attention_probs_dropout_prob: float = 0.1,
    discriminator_weight: float = DISCRIMINATOR_WEIGHT,
    sparse_prediction: bool = True,
    seed: int = 0,
) -> ElectraForReplacedTokenDetection:
    """A fresh generator and discriminator. The generator has the discriminator's depth and ``generator_size``
    of its width, heads and feed-forward size (the paper finds 1/4 to 1/2 best)."""
    common = dict(
        vocab_size=vocab_size,
        embedding_size=embedding_size or hidden_size,
        num_hidden_layers=num_hidden_layers,
        max_position_embeddings=max_position_embeddings,
        hidden_dropout_prob=hidden_dropout_prob,
        attention_probs_dropout_prob=attention_probs_dropout_prob,
        pad_token_id=pad_token_id,
        type_vocab_size=2,
    )
    generator_heads = max(1, round(num_attention_heads * generator_size))
    generator_hidden = max(generator_heads, round(hidden_size * generator_size / generator_heads) * generator_heads)
    discriminator = ElectraForPreTraining(ElectraConfig(
        hidden_size=hidden_size, num_attention_heads=num_attention_heads, intermediate_size=intermediate_size, **common
    ))
    generator = ElectraForMaskedLM(ElectraConfig(
        hidden_size=generator_hidden, num_attention_heads=generator_heads,
        intermediate_size=max(1, round(intermediate_size * generator_size)), **common
    ))
    return ElectraForReplacedTokenDetection(generator, discriminator, discriminator_weight, seed, sparse_prediction)


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

    def summarize(self, totals: list[float]) -> dict[str, float]:
        t = dict(zip(self.names, totals))
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
