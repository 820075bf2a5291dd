"""Security: presets are data, checkpoints bring no code and no pickles unless asked to, the Hub token stays secret."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from .conftest import DEBUG, ROOT, run_recipe

pytestmark = [pytest.mark.component, pytest.mark.faults]

FINETUNE = ["recipes/finetune_glue.py", "--config", str(ROOT / "recipes" / "configs" / "glue.yaml"), "--task_name",
            "mrpc", "--max_steps", "1"]


def _glue(tmp_path):
    from .test_glue import FIXTURES, write_task

    header, rows = FIXTURES["MRPC"]
    write_task(tmp_path / "glue", "MRPC", header, rows * 4)
    return str(tmp_path / "glue")


def _tiny_checkpoint(folder, tokenizer, safe: bool) -> None:
    model = BertForSequenceClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32))
    if safe:
        model.save_pretrained(folder)
    else:  # transformers 5 writes safetensors only: the pickled form, as older checkpoints have it
        model.config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    tokenizer.save_pretrained(folder)


def test_a_yaml_preset_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    preset = tmp_path / "evil.yaml"
    preset.write_text(f'max_steps: !!python/object/apply:os.system ["touch {marker}"]\n')
    result = run_recipe("recipes/pretrain_bert.py", "--config", str(preset), "--output_dir", str(tmp_path / "o"))
    assert result.returncode == 2 and "error: " in result.stdout and "evil.yaml" in result.stdout
    assert "Traceback" not in result.stdout
    assert not marker.exists()


def test_remote_code_in_a_checkpoint_does_not_run_by_default(tmp_path, tokenizer):
    checkpoint = tmp_path / "ckpt"
    _tiny_checkpoint(checkpoint, tokenizer, safe=True)
    marker = tmp_path / "pwned"
    (checkpoint / "evil_config.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "from transformers import PretrainedConfig\nclass EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
    )
    config = json.loads((checkpoint / "config.json").read_text())
    config.update(model_type="evil", auto_map={"AutoConfig": "evil_config.EvilConfig"})
    (checkpoint / "config.json").write_text(json.dumps(config))
    result = run_recipe(*FINETUNE, "--model_name_or_path", str(checkpoint), "--glue_dir", _glue(tmp_path),
                        "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stdout, result.stdout[-2000:]
    assert "error: " in result.stdout and str(checkpoint) in result.stdout
    assert not marker.exists()


def test_pickled_weights_load_only_by_opt_in(tmp_path, tokenizer):
    checkpoint = tmp_path / "ckpt"
    _tiny_checkpoint(checkpoint, tokenizer, safe=False)
    assert (checkpoint / "pytorch_model.bin").is_file() and not (checkpoint / "model.safetensors").exists()
    common = ["--model_name_or_path", str(checkpoint), "--glue_dir", _glue(tmp_path), "--output_dir", str(tmp_path / "o")]
    refused = run_recipe(*FINETUNE, *common)
    assert refused.returncode == 2 and "Traceback" not in refused.stdout
    assert "pickled weights only (pytorch_model.bin): pass --use_safetensors false if you trust it" in refused.stdout
    allowed = run_recipe(*FINETUNE, *common, "--use_safetensors", "false")
    assert allowed.returncode == 0, allowed.stdout[-2000:]


def test_checkpoints_hold_no_hub_token(tmp_path):
    """Every file a run writes, checkpoints (and their pickled training arguments) included, is free of the token;
    so is the log. The token reaches the Hub only in the Authorization header (test_end_to_end's loopback Hub)."""
    token = "hf_SECRETtokenNEVERwritten42"
    result = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, "--max_steps", "2", "--save_steps", "1",
                        "--eval_strategy", "no", "--hub_token", token, "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-2000:]
    assert token not in result.stdout
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in files) and any("checkpoint-" in str(p) for p in files)
    for path in files:
        assert token.encode() not in path.read_bytes(), path
