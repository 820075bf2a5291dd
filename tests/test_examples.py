"""Every script in examples/ runs as its docstring says."""

from __future__ import annotations

import re

from .conftest import run_recipe


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
