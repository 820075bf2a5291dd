"""The one owner of resuming (``training/resume.py``): whether a checkpoint is this run's, and the global batch a
resume keeps on another layout, decided from the checkpoint's recorded settings before any data work."""

from __future__ import annotations

import json

import pytest
from transformers import TrainingArguments

from hf_pretrain.errors import HfPretrainError
from hf_pretrain.training.resume import CheckpointManager, run_settings

pytestmark = pytest.mark.unit


def _checkpoint(tmp_path, **settings):
    folder = tmp_path / "out" / "checkpoint-4"
    folder.mkdir(parents=True)
    saved = {"vocab_size": 2000, "per_device_train_batch_size": 16, "gradient_accumulation_steps": 1, "world_size": 1,
             **settings}
    (folder / "run_settings.json").write_text(json.dumps(saved))
    return str(folder)


def _manager(tmp_path, vocab_size=2000, **args):
    training_args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none",
                                      per_device_train_batch_size=args.pop("batch", 16), **args)
    return CheckpointManager(training_args, {"vocab_size": vocab_size})


def test_another_runs_checkpoint_is_refused_naming_what_changed(tmp_path):
    checkpoint = _checkpoint(tmp_path)
    with pytest.raises(HfPretrainError, match=r"belongs to another run \(--vocab_size 2000 then, 500 now\): resume "
                                              r"with the same settings, or pass --overwrite_output_dir"):
        _manager(tmp_path, vocab_size=500).check(checkpoint)
    named = _manager(tmp_path, vocab_size=500, resume_from_checkpoint=checkpoint)
    with pytest.raises(HfPretrainError, match="drop --resume_from_checkpoint to start afresh") as refused:
        named.check(checkpoint)
    assert "overwrite_output_dir" not in str(refused.value)  # the advice is never a flag that would not help
    _manager(tmp_path).check(checkpoint)  # the same settings: resumed


def test_a_resume_keeps_the_global_batch_by_accumulating(tmp_path):
    checkpoint = _checkpoint(tmp_path)
    manager = _manager(tmp_path, batch=4)
    manager.check(checkpoint)
    assert manager.args.gradient_accumulation_steps == 4  # 4 sequences x 4 steps = the checkpoint's 16
    assert manager.settings["gradient_accumulation_steps"] == 4  # what the next checkpoints record
    unchanged = _manager(tmp_path, batch=8, gradient_accumulation_steps=2)
    unchanged.check(checkpoint)
    assert unchanged.args.gradient_accumulation_steps == 2


def test_a_batch_that_cannot_make_the_global_batch_is_refused_with_one_that_can(tmp_path):
    checkpoint = _checkpoint(tmp_path)
    with pytest.raises(HfPretrainError) as refused:
        _manager(tmp_path, batch=5).check(checkpoint)
    assert str(refused.value) == (
        f"{checkpoint} was trained with a global batch of 16 sequences (16 sequences per device x 1 accumulation steps "
        "x 1 process(es)); 5 sequences per device x 1 process(es) cannot make it, so resuming would change which "
        "sequences each step trains (some twice, some never): pass --per_device_train_batch_size 4 (with "
        "--gradient_accumulation_steps 4 it makes 16), or pass --overwrite_output_dir to start afresh")
    with pytest.raises(HfPretrainError, match=r"global batch of 6 sequences .* pass --per_device_train_batch_size 3 "
                                              r"\(with --gradient_accumulation_steps 2 it makes 6\)"):
        _manager(tmp_path, batch=4).check(_checkpoint(tmp_path / "other", per_device_train_batch_size=6))


def test_a_checkpoint_without_settings_resumes_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "out" / "checkpoint-2"
    folder.mkdir(parents=True)
    with caplog.at_level("WARNING"):
        _manager(tmp_path, vocab_size=1).check(str(folder))
    assert "records no run settings" in caplog.text


def test_run_settings_leave_out_what_a_resume_may_change():
    from hf_pretrain.data.arguments import DataArguments

    settings = run_settings(DataArguments(preprocessing_num_workers=4, max_seq_length=64), None)
    assert settings["max_seq_length"] == 64 and "preprocessing_num_workers" not in settings
