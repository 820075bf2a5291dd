"""Layer 2: presets, command-line overrides and argument validation."""

from __future__ import annotations

import pytest
from transformers import TrainingArguments

from hf_pretrain import DataArguments, ModelArguments, PretrainingArguments
from hf_pretrain.config import parse_config
from hf_pretrain.errors import HfPretrainError

from .conftest import DEBUG

pytestmark = pytest.mark.unit

TYPES = (ModelArguments, DataArguments, PretrainingArguments, TrainingArguments)


def test_preset_gives_defaults_and_flags_override(tmp_path):
    model, data, objective, training = parse_config(
        TYPES, ["--config", DEBUG, "--max_steps", "7", "--objective", "mlm", "--output_dir", str(tmp_path)]
    )
    assert (model.hidden_size, model.num_hidden_layers, data.max_seq_length) == (64, 2, 64)  # from the preset
    assert training.max_steps == 7 and objective.objective == "mlm"  # from the flags
    assert training.output_dir == str(tmp_path)


@pytest.mark.parametrize(
    "rates, preset, flags, expected, measured",
    [
        ({"bf16": 80e9, "fp32": 145e9}, "auto", [], False, True),  # AVX-512 BF16 alone: half fp32's rate
        ({"bf16": 500e9, "fp32": 150e9}, "auto", [], True, True),  # AMX
        ({"bf16": 160e9, "fp32": 145e9}, "auto", [], False, True),  # within the margin: fp32
        ({"bf16": 80e9, "fp32": 145e9}, "auto", ["--bf16", "true"], True, False),  # a flag wins over the preset
        ({"bf16": 80e9, "fp32": 145e9}, "auto", ["--bf16"], True, False),
        ({"bf16": 500e9, "fp32": 150e9}, "false", ["--bf16", "auto"], True, True),  # and asks for auto itself
        ({"bf16": 500e9, "fp32": 150e9}, "false", ["--bf16=auto"], True, True),
        ({"bf16": 500e9, "fp32": 150e9}, "false", [], False, False),
    ],
)
def test_bf16_auto_trains_in_the_precision_this_cpu_multiplies_faster(tmp_path, monkeypatch, caplog, rates, preset,
                                                                     flags, expected, measured):
    import torch

    from hf_pretrain.runtime import precision

    monkeypatch.setattr(precision, "matmul_rate", lambda dtype: rates["bf16" if dtype == torch.bfloat16 else "fp32"])
    config = tmp_path / "p.yaml"
    config.write_text(f"hidden_size: 64\nbf16: {preset}\n")
    with caplog.at_level("INFO"):
        *_, training = parse_config(TYPES, ["--config", str(config), "--output_dir", str(tmp_path), *flags])
    assert training.bf16 is expected
    assert ("--bf16 auto: this CPU multiplies bf16 matrices at" in caplog.text) == measured


@pytest.mark.faults
def test_unknown_key_in_preset(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("hidden_size: 64\nhiden_layers: 2\n")
    with pytest.raises(HfPretrainError, match=r"p\.yaml: unknown key 'hiden_layers'"):
        parse_config(TYPES, ["--config", str(preset)])


@pytest.mark.faults
def test_unknown_flag_with_suggestion():
    with pytest.raises(HfPretrainError, match=r"unknown argument --mlm_probabilty \(did you mean 'mlm_probability'\?\)"):
        parse_config(TYPES, ["--config", DEBUG, "--mlm_probabilty", "0.2"])


@pytest.mark.faults
def test_preset_that_is_not_a_mapping(tmp_path):
    preset = tmp_path / "list.yaml"
    preset.write_text("- a\n- b\n")
    with pytest.raises(HfPretrainError, match="must be a mapping"):
        parse_config(TYPES, ["--config", str(preset)])


@pytest.mark.faults
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
        (["--objective", "sop"], "--objective must be one of clm, contrastive, electra, electra_match, mlm, mlm_match, mlm_nsp, mlm_sbo"),
        (["--mlm_probability", "1.5"], "--mlm_probability must be in"),
        (["--mask_replace_prob", "0.95"], "sum to at most 1"),
        (["--hidden_size", "65"], "not a multiple of --num_attention_heads"),
        (["--train_file", "a.txt", "--dataset_name", "wikitext"], "give one of --train_file, --dataset_name and --prepared_dataset"),
    ],
)
@pytest.mark.faults
def test_validation_names_the_flag(flags, message):
    with pytest.raises(HfPretrainError, match=message):
        parse_config(TYPES, ["--config", DEBUG, *flags])


@pytest.mark.parametrize(
    "preset, flags, message",
    [
        (b"learning_rate: 1e-3\nlearning_rate: 2e-3\n", [], "duplicate key 'learning_rate' (line 2)"),
        (b"learning_rate: [1, 2]\n", [], "'learning_rate' must be float, not [1, 2]"),
        (b"bf16: 3\n", [], "'bf16' must be true or false, not 3"),
        (b"max_steps: 1.5\n", [], "'max_steps' must be int, not 1.5"),
        (b"max_steps: \xff\n", [], "not UTF-8 text (byte 11); save the preset as UTF-8"),
        (b"seed: 0\n", ["--learning_rate", "abc"], "argument --learning_rate/--learning-rate: invalid float value: 'abc'"),
        (b"seed: 0\n", ["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1, not 0"),
        (b"seed: 0\n", ["--max_steps", "-5"], "--max_steps must be positive, or -1 to train --num_train_epochs, not -5"),
    ],
)
@pytest.mark.faults
def test_bad_presets_and_values_are_one_line_errors(tmp_path, preset, flags, message):
    path = tmp_path / "preset.yaml"
    path.write_bytes(preset)
    with pytest.raises(HfPretrainError) as error:
        parse_config(TYPES, ["--config", str(path), *flags, "--output_dir", str(tmp_path)])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_preset_lists_and_mappings_take_their_types(tmp_path):
    path = tmp_path / "preset.yaml"
    path.write_text("train_file: corpus.txt\nlr_scheduler_kwargs: {num_decay_steps: 3}\n")
    _, data, _, training = parse_config(TYPES, ["--config", str(path), "--output_dir", str(tmp_path)])
    assert data.train_file == ["corpus.txt"] and training.lr_scheduler_kwargs == {"num_decay_steps": 3}


@pytest.mark.faults
def test_a_checkpoint_without_tokenizer_files_is_refused(tmp_path):
    from transformers import BertConfig

    from hf_pretrain.data.tokenizer import load_tokenizer

    BertConfig(vocab_size=100).save_pretrained(tmp_path)
    with pytest.raises(HfPretrainError, match="--model_name_or_path .*: the folder holds no tokenizer"):
        load_tokenizer(str(tmp_path), flag="--model_name_or_path")


def test_the_flag_reference_is_generated_per_objective():
    """Every flag of the classes a run parses, each with its help; another objective's flags are not there."""
    import dataclasses

    from hf_pretrain.flags import flag_reference, pretraining_argument_classes
    from hf_pretrain.objectives import objective_names

    for name in objective_names():
        reference = flag_reference(name)
        for cls in pretraining_argument_classes(name):
            for field in dataclasses.fields(cls):
                if field.init:
                    assert f"| `--{field.name}` |" in reference, (name, field.name)
        assert ("`--generator_size`" in reference) == (name in ("electra", "electra_match"))
        assert ("`--temperature`" in reference) == (name == "contrastive")
    assert "| `--mlm_probability` | `0.15` | Fraction of tokens selected for prediction. |" in flag_reference("mlm")
