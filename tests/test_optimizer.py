"""``--use_muon`` (``training/optimizer.py``): which weights Muon takes, that one step is exactly torch's Muon on them
and torch's AdamW on the rest, and that a schedule and a reloaded state reach both."""

from __future__ import annotations

import io

import pytest
import torch
from transformers import (BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM, ModernBertConfig,
                          ModernBertForMaskedLM, TrainingArguments)

from hf_pretrain.errors import HfPretrainError
from hf_pretrain.training.optimizer import MUON_MOMENTUM, block_matrices, muon_with_adamw

pytestmark = pytest.mark.unit

SIZE = {"vocab_size": 97, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 48}


def _modernbert():
    torch.manual_seed(0)
    return ModernBertForMaskedLM(ModernBertConfig(**SIZE, pad_token_id=0, max_position_embeddings=64))


def _args(tmp_path, **overrides):
    return TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", learning_rate=1e-2,
                             weight_decay=0.1, adam_beta2=0.95, **overrides)


def _backward(model, seed=1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 97, (4, 16), generator=generator)
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()


def test_muon_takes_the_blocks_matrices_and_nothing_else():
    per_layer = {
        "modernbert": (_modernbert(), "model.layers.{}.", ["attn.Wqkv", "attn.Wo", "mlp.Wi", "mlp.Wo"]),
        "llama": (LlamaForCausalLM(LlamaConfig(**SIZE, tie_word_embeddings=True)), "model.layers.{}.",
                  ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                   "mlp.up_proj", "mlp.down_proj"]),
        "bert": (BertForMaskedLM(BertConfig(**SIZE)), "bert.encoder.layer.{}.",
                 ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                  "intermediate.dense", "output.dense"]),
    }
    for name, (model, prefix, matrices) in per_layer.items():
        expected = sorted(f"{prefix.format(i)}{m}.weight" for i in range(2) for m in matrices)
        assert block_matrices(model) == expected, name  # not the embeddings, the output projection or the MLM head


def test_one_step_is_muon_on_the_matrices_and_adamw_on_the_rest(tmp_path):
    model, reference = _modernbert(), _modernbert()
    args = _args(tmp_path)
    decayed = {n for n, _ in model.named_parameters() if "norm" not in n and not n.endswith("bias")}
    optimizer = muon_with_adamw(model, args, decayed)
    matrices = set(block_matrices(reference))
    named = dict(reference.named_parameters())
    muon = torch.optim.Muon([named[n] for n in sorted(matrices)], lr=1e-2, weight_decay=0.1, momentum=MUON_MOMENTUM,
                            nesterov=True, adjust_lr_fn="match_rms_adamw")
    rest = [(n, p) for n, p in reference.named_parameters() if n not in matrices]
    adamw = torch.optim.AdamW([{"params": [p for n, p in rest if n in decayed], "weight_decay": 0.1},
                               {"params": [p for n, p in rest if n not in decayed], "weight_decay": 0.0}],
                              lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for seed in (1, 2):
        _backward(model, seed), _backward(reference, seed)
        optimizer.step(), muon.step(), adamw.step()
        if seed == 1:  # Muon's first update of a matrix, weight decay taken out: (nearly) orthogonal
            name, (rows, columns) = "model.layers.0.mlp.Wo.weight", named["model.layers.0.mlp.Wo.weight"].shape
            scale = 1e-2 * 0.2 * max(rows, columns) ** 0.5  # match_rms_adamw
            update = (before[name] * (1 - 1e-2 * 0.1) - dict(model.named_parameters())[name].detach()) / scale
            singular = torch.linalg.svdvals(update.float())
            assert singular.max() < 1.3 and (singular > 0.5).float().mean() > 0.75, singular
    for (name, ours), (_, theirs) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.equal(ours, theirs), name
        assert not torch.equal(ours, before[name]), f"{name} did not move"


def test_the_schedule_and_a_reloaded_state_reach_both_optimizers(tmp_path):
    model = _modernbert()
    optimizer = muon_with_adamw(model, _args(tmp_path), set())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    assert {g["lr"] for g in optimizer.muon.param_groups + optimizer.adamw.param_groups} == {5e-3}
    _backward(model)
    optimizer.step(), scheduler.step()
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)  # as a checkpoint's optimizer.pt; loaded as the Trainer loads it
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    resumed_model = _modernbert()
    resumed_model.load_state_dict(model.state_dict())
    resumed = muon_with_adamw(resumed_model, _args(tmp_path), set())
    resumed.load_state_dict(state)
    torch.optim.lr_scheduler.LambdaLR(resumed, lambda step: 0.25)
    assert {g["lr"] for g in resumed.muon.param_groups + resumed.adamw.param_groups} == {2.5e-3}
    for group in optimizer.param_groups:
        group["lr"] = 2.5e-3
    _backward(model, 3), _backward(resumed_model, 3)
    optimizer.step(), resumed.step()
    for (name, ours), (_, theirs) in zip(model.named_parameters(), resumed_model.named_parameters()):
        assert torch.equal(ours, theirs), name  # the momentum buffers and Adam moments came back exactly


def test_a_state_or_a_model_muon_cannot_take_is_refused(tmp_path):
    model = _modernbert()
    optimizer = muon_with_adamw(model, _args(tmp_path), set())
    adamw_state = torch.optim.AdamW(model.parameters()).state_dict()
    with pytest.raises(HfPretrainError, match="saved without --use_muon"):
        optimizer.load_state_dict(adamw_state)
    with pytest.raises(HfPretrainError, match="--use_muon: Linear has no repeated blocks"):
        muon_with_adamw(torch.nn.Linear(4, 4), _args(tmp_path), set())
