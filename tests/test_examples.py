"""Every script in examples/ runs as its docstring says."""

from __future__ import annotations

import pytest

import re
from pathlib import Path

from .conftest import DEBUG, ROOT, run_recipe

pytestmark = pytest.mark.end_to_end


def test_collator_in_your_trainer(tmp_path):
    result = run_recipe("examples/collator_in_your_trainer.py", "--output_dir", str(tmp_path), "--max_steps", "10")
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"final training loss \d+\.\d+", result.stdout)
    assert (tmp_path / "model.safetensors").is_file()


def test_train_tokenizer(tmp_path, corpus_file):
    result = run_recipe("examples/train_tokenizer.py", "--train_file", str(corpus_file), "--vocab_size", "250",
                        "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "from 40 documents" in result.stdout and (tmp_path / "tokenizer.json").is_file()


def test_finetune_checkpoint(tmp_path):
    from .test_end_to_end import FAST
    from .test_glue import FIXTURES, write_task

    assert run_recipe("recipes/pretrain_bert.py", *FAST, "--max_steps", "2", "--save_strategy", "no",
                      "--eval_strategy", "no", "--output_dir", str(tmp_path / "ckpt")).returncode == 0
    header, rows = FIXTURES["MRPC"]
    write_task(tmp_path / "glue", "MRPC", header, rows * 10)
    result = run_recipe("examples/finetune_checkpoint.py", "--checkpoint", str(tmp_path / "ckpt"), "--glue_dir",
                        str(tmp_path / "glue"), "--output_dir", str(tmp_path / "out"), "--max_steps", "2")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "'validation_accuracy'" in result.stdout and "'validation_f1'" in result.stdout


TOY = "examples/toy_objective.py"


def test_an_objective_from_one_file_outside_the_package_trains_through_the_recipe(tmp_path):
    """examples/toy_objective.py declares everything itself (name, flags, rows, pad value, a named random stream,
    model, metrics); --plugins makes it an --objective like the built-in ones, and its export loads in plain
    transformers."""
    import json

    result = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, "--plugins", TOY, "--objective",
                        "toy_replaced", "--replace_fraction", "0.3", "--max_steps", "6", "--logging_steps", "3",
                        "--eval_steps", "6", "--save_strategy", "no", "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    evaluation = [h for h in history if "eval_detection_accuracy" in h][-1]
    assert 0.5 < evaluation["eval_detection_accuracy"] <= 1  # about 70 % of the scored tokens are originals
    assert any("replaced_recall" in h for h in history if "loss" in h)  # counted in training logs too
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertForTokenClassification"]
    assert "| replaced | 30% of the tokens, uniformly at random |" in (tmp_path / "README.md").read_text()

    refused = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, "--plugins", TOY, "--objective", "mlm",
                         "--replace_fraction", "0.3", "--output_dir", str(tmp_path / "refused"))
    assert refused.returncode == 2 and refused.stdout.strip().splitlines()[-1] == (
        "error: --replace_fraction is a flag of --objective toy_replaced, and this run trains --objective mlm: drop "
        "it, or train that objective"
    )
    assert not (tmp_path / "refused").exists()
    missing = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, "--plugins", "examples/nope.py",
                         "--objective", "toy_replaced", "--output_dir", str(tmp_path / "missing"))
    assert missing.returncode == 2 and missing.stdout.strip().splitlines()[-1] == (
        "error: --plugins examples/nope.py: no such file"
    )


def test_the_toy_objective_draws_from_its_own_stream_and_its_flags_are_listed(monkeypatch, request):
    import subprocess
    import sys

    import torch

    from hf_pretrain.objectives import registry
    from hf_pretrain.runtime import load_plugins
    from hf_pretrain.rng import torch_generator

    # Registered in this process only for this test: a later test in the same worker (the docs' flag page) lists
    # the built-in objectives.
    monkeypatch.setattr(registry, "_OBJECTIVES", dict(registry._OBJECTIVES))
    (name,) = load_plugins([TOY])
    request.addfinalizer(lambda: sys.modules.pop(name, None))
    collator = sys.modules[name].RandomReplacementCollator(pad_token_id=0, vocab_size=1000, fraction=0.5, seed=3)
    features = [{"input_ids": list(range(5, 45)), "replaceable": [1] * 40, "sequence_id": 7},
                {"input_ids": list(range(5, 25)), "replaceable": [0] + [1] * 19, "sequence_id": 8}]
    first, again = collator(features), collator(features)
    assert torch.equal(first["input_ids"], again["input_ids"])  # keyed by the batch: the same whenever drawn
    explicit = collator(features, torch_generator("toy_replacements", 3, 7, 8))
    assert torch.equal(first["input_ids"], explicit["input_ids"])
    assert (first["labels"][1, 20:] == -100).all() and first["labels"][1, 0] == -100  # padding, unreplaceable
    changed = (first["labels"] == 1).float().sum() / (first["labels"] != -100).sum()
    assert 0.3 < changed < 0.7
    listing = subprocess.run([str(Path(sys.executable).parent / "hf-pretrain"), "flags", "--plugins", TOY,
                              "--objective", "toy_replaced"], capture_output=True, text=True, cwd=ROOT)
    assert listing.returncode == 0, listing.stderr
    assert "| `--replace_fraction` | `0.15` | Fraction of tokens replaced by a random one. |" in listing.stdout
