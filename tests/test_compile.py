"""``--torch_compile_regions``: how the Trainer's accelerator compiles a model under ``--torch_compile``, block by
block (the default) or whole, and that either way the model it saves from is the model itself. Nothing is run
through the compiler here (``torch.compile`` compiles at the first call): the recipe's compiled run is
``test_modern_encoders``'."""

from __future__ import annotations

import os

import pytest
import torch
from torch._dynamo.eval_frame import OptimizedModule
from transformers import ModernBertConfig, ModernBertForMaskedLM, Trainer, TrainingArguments

from hf_pretrain.training.arguments import RunArguments
from hf_pretrain.runtime.process import compiled_regions

pytestmark = pytest.mark.unit


def _prepared(tmp_path, regions: bool):
    torch.manual_seed(0)
    model = ModernBertForMaskedLM(ModernBertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=3,
                                                   num_attention_heads=2, intermediate_size=48, pad_token_id=0,
                                                   sep_token_id=1, cls_token_id=2, bos_token_id=2, eos_token_id=1))
    with compiled_regions(regions):
        trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True,
                                                              report_to="none", torch_compile=True))
    return model, trainer.accelerator, trainer.accelerator.prepare_model(model)


def test_by_default_each_block_is_compiled_on_its_own_and_the_saved_weights_keep_their_names(tmp_path):
    assert RunArguments().torch_compile_regions
    model, accelerator, prepared = _prepared(tmp_path, RunArguments().torch_compile_regions)
    assert accelerator.state.dynamo_plugin.use_regional_compilation
    assert not isinstance(prepared, OptimizedModule)
    assert [type(block) for block in prepared.model.layers] == [OptimizedModule] * 3
    assert isinstance(prepared.model.embeddings, OptimizedModule) and isinstance(prepared.head, OptimizedModule)
    assert prepared.model.layers[0]._orig_mod.attn.Wqkv.weight is model.model.layers[0].attn.Wqkv.weight  # shared
    # What the Trainer saves from: the model itself, its weights under their own names (no "_orig_mod.").
    assert accelerator.unwrap_model(prepared, keep_torch_compile=False) is model


def test_false_compiles_the_whole_model_as_one(tmp_path):
    model, accelerator, prepared = _prepared(tmp_path, False)
    assert not accelerator.state.dynamo_plugin.use_regional_compilation
    assert isinstance(prepared, OptimizedModule) and prepared._orig_mod is model
    assert not any(isinstance(block, OptimizedModule) for block in model.model.layers)
    assert accelerator.unwrap_model(prepared, keep_torch_compile=False) is model


def test_the_choice_is_the_trainer_s_and_the_process_environment_is_left_as_it_was(tmp_path, monkeypatch):
    """A run forked or started after this one (a test's, a sweep's) sees the environment it would have seen."""
    monkeypatch.delenv("ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION", raising=False)
    _, accelerator, _ = _prepared(tmp_path, True)
    assert "ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION" not in os.environ
    monkeypatch.setenv("ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION", "true")  # as `accelerate launch` may set it
    _, accelerator, _ = _prepared(tmp_path, False)
    assert not accelerator.state.dynamo_plugin.use_regional_compilation  # the flag decides
    assert os.environ["ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION"] == "true"
