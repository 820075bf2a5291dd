"""Llama (Touvron et al., 2023), the causal and prefix LM objectives' default decoder: pre-norm, SwiGLU, rotary
positions. Packed documents stay apart through the stock model's packed-sequence support (:mod:`..causal`); any
other decoder transformers ships trains the same way without a module here."""

from __future__ import annotations

from transformers import LlamaForCausalLM

from ..heads import CausalTraining
from .base import Architecture, register_architecture


class TrainingLlamaForCausalLM(CausalTraining, LlamaForCausalLM):
    """``LlamaForCausalLM`` with the prefix-LM mask; exports as the stock class."""


LLAMA = register_architecture(Architecture(model_type="llama", causal_lm=TrainingLlamaForCausalLM))
