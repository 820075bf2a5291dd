"""Attention masks for rows that pack several documents: each document attends only to itself.

The masks come from transformers' own mask factory (``masking_utils``) with a packed-sequence mask function, so
they take whatever form the model's attention implementation needs: a boolean mask for SDPA, an additive one for
eager attention, a ``BlockMask`` for flex attention (which skips the blocks between documents on a GPU). Models
with local (sliding-window) layers, such as ModernBERT, get one mask per layer type.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig
from transformers.masking_utils import (
    create_bidirectional_mask,
    create_bidirectional_sliding_window_mask,
    packed_sequence_mask_function,
)

from ..errors import HfPretrainError

SUPPORTED = ("sdpa", "eager", "flex_attention")


def document_attention_masks(
    config: PretrainedConfig, document_ids: torch.Tensor, attention_mask: torch.Tensor | None, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """``{layer type: mask}`` letting each token attend only to tokens of its own document (``document_ids``,
    ``(batch, seq)``) and never to padding; layer types are ``full_attention`` and, where the config has local
    layers, ``sliding_attention`` (the document mask and the window, both)."""
    implementation = config._attn_implementation
    if implementation not in SUPPORTED:
        raise HfPretrainError(
            f"--isolate_documents works with the {', '.join(SUPPORTED)} attention implementations, not "
            f"'{implementation}'"
        )
    # The factory reads only the batch size, length, dtype and device of the embeddings.
    embeds = torch.empty(*document_ids.shape, 0, dtype=dtype, device=document_ids.device)
    same_document = packed_sequence_mask_function(document_ids)
    masks = {"full_attention": create_bidirectional_mask(config, embeds, attention_mask,
                                                         and_mask_function=same_document)}
    if "sliding_attention" in (getattr(config, "layer_types", None) or ()):
        masks["sliding_attention"] = create_bidirectional_sliding_window_mask(
            config, embeds, attention_mask, and_mask_function=same_document
        )
    return masks


def block_diagonal_attention_mask(
    document_ids: torch.Tensor, attention_mask: torch.Tensor | None, config: PretrainedConfig,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The ``full_attention`` mask of :func:`document_attention_masks`, for models with one kind of layer."""
    return document_attention_masks(config, document_ids, attention_mask, dtype)["full_attention"]
