"""Layer 2: presets, command-line overrides and argument validation."""

from __future__ import annotations

import pytest
from transformers import TrainingArguments

from hf_pretrain import DataArguments, ModelArguments, PretrainingArguments
from hf_pretrain.config import parse_config
from hf_pretrain.errors import HfPretrainError

from .conftest import DEBUG

TYPES = (ModelArguments, DataArguments, PretrainingArguments, TrainingArguments)


def test_preset_gives_defaults_and_flags_override(tmp_path):
    model, data, objective, training = parse_config(
        TYPES, ["--config", DEBUG, "--max_steps", "7", "--objective", "mlm", "--output_dir", str(tmp_path)]
    )
    assert (model.hidden_size, model.num_hidden_layers, data.max_seq_length) == (64, 2, 64)  # from the preset
    assert training.max_steps == 7 and objective.objective == "mlm"  # from the flags
    assert training.output_dir == str(tmp_path)


def test_unknown_key_in_preset(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("hidden_size: 64\nhiden_layers: 2\n")
    with pytest.raises(HfPretrainError, match=r"p\.yaml: unknown key 'hiden_layers'"):
        parse_config(TYPES, ["--config", str(preset)])


def test_unknown_flag_with_suggestion():
    with pytest.raises(HfPretrainError, match=r"unknown argument --mlm_probabilty \(did you mean 'mlm_probability'\?\)"):
        parse_config(TYPES, ["--config", DEBUG, "--mlm_probabilty", "0.2"])


def test_preset_that_is_not_a_mapping(tmp_path):
    preset = tmp_path / "list.yaml"
    preset.write_text("- a\n- b\n")
    with pytest.raises(HfPretrainError, match="must be a mapping"):
        parse_config(TYPES, ["--config", str(preset)])


def test_fp16_refused_without_gpu_and_bf16_runs_on_cpu():
    with pytest.raises(HfPretrainError, match="--fp16 needs a GPU"):
        parse_config(TYPES, ["--config", DEBUG, "--fp16"])
    *_, training = parse_config(TYPES, ["--config", DEBUG, "--bf16"])
    assert training.bf16 and training.use_cpu


def test_an_accelerator_other_than_cuda_is_not_disabled(monkeypatch):
    """Apple MPS, XPU...: only a machine with no accelerator at all is told to train on the CPU."""
    import torch

    from hf_pretrain.config import _place_without_accelerator

    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    values = {"use_cpu": False, "fp16": True}
    _place_without_accelerator(values)
    assert values == {"use_cpu": False, "fp16": True}
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    values = {"use_cpu": False, "bf16": True}
    _place_without_accelerator(values)
    assert values["use_cpu"] is True


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--objective", "sop"], "--objective must be one of mlm, mlm_nsp"),
        (["--mlm_probability", "1.5"], "--mlm_probability must be in"),
        (["--mask_replace_prob", "0.95"], "sum to at most 1"),
        (["--hidden_size", "65"], "not a multiple of --num_attention_heads"),
        (["--train_file", "a.txt", "--dataset_name", "wikitext"], "give one of --train_file, --dataset_name and --prepared_dataset"),
    ],
)
def test_validation_names_the_flag(flags, message):
    with pytest.raises(HfPretrainError, match=message):
        parse_config(TYPES, ["--config", DEBUG, *flags])
