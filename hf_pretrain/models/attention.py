"""Attention masks for rows that pack several documents: each document attends only to itself."""

from __future__ import annotations

import torch

from ..errors import HfPretrainError


def block_diagonal_attention_mask(
    document_ids: torch.Tensor, attention_mask: torch.Tensor | None, attn_implementation: str
) -> torch.Tensor:
    """A ``(batch, 1, seq, seq)`` mask letting each token attend only to tokens of its own document (and never to
    padding), in the form the attention implementation takes: booleans for SDPA, an additive float mask for eager.
    """
    allowed = document_ids[:, :, None] == document_ids[:, None, :]
    if attention_mask is not None:
        allowed &= attention_mask[:, None, :].bool()
    allowed = allowed[:, None]
    if attn_implementation == "sdpa":
        return allowed
    if attn_implementation == "eager":
        return torch.zeros(allowed.shape).masked_fill_(~allowed, torch.finfo(torch.float32).min)
    raise HfPretrainError(
        f"--isolate_documents works with the 'sdpa' and 'eager' attention implementations, not "
        f"'{attn_implementation}'"
    )
