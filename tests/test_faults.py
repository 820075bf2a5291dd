"""Fault injection: runs killed with SIGKILL or Ctrl-C and resumed, crashes while saving, a full disk, non-finite
losses. Every case here is a ``faults`` case (``make faults`` runs them with the others marked so elsewhere).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hf_pretrain.errors import HfPretrainError

from .conftest import DEBUG, ROOT, recipe_env, run_recipe, start_recipe, tmpfs

pytestmark = [pytest.mark.end_to_end, pytest.mark.faults]

ACCELERATE = str(Path(sys.executable).parent / "accelerate")
LAUNCH = [ACCELERATE, "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
          "--dynamo_backend", "no"]
TOKENIZER = str(ROOT / "tests" / "golden" / "debug_tokenizer")
RECIPES = {
    "bert": ["recipes/pretrain_bert.py", "--config", DEBUG],
    "electra": ["recipes/pretrain_electra.py", "--config", str(ROOT / "recipes" / "configs" / "electra_debug.yaml")],
}
STEPS = 30


def _command(recipe: str, out: Path, launcher: bool = True) -> list[str]:
    """The run, through ``accelerate launch`` (or not: a process forked as the recipes' tests fork them)."""
    return [*(LAUNCH if launcher else []), *RECIPES[recipe], "--tokenizer_name", TOKENIZER, "--max_steps", str(STEPS), "--save_steps", "5",
            "--logging_steps", "1", "--eval_strategy", "no", "--log_sequence_ids", "--output_dir", str(out)]


def _batches(out: Path) -> dict[tuple[int, int], list[int]]:
    """(step, micro-batch) -> sequence ids, each logged once: a resumed run drops the killed run's records of the
    steps it trains again."""
    records = [json.loads(line) for line in (out / "sequence_ids" / "rank-0.jsonl").read_text().splitlines()]
    batches = {(r["step"], r["micro_batch"]): r["sequence_ids"] for r in records}
    assert len(batches) == len(records), "a step appears twice in the sequence log"
    return batches


def _losses(out: Path) -> dict[int, float]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return {h["step"]: h["loss"] for h in history if "loss" in h}


def _kill_at_step(command: list[str], out: Path, step: int, timeout: float = 300, env: dict | None = None) -> None:
    """Start the run in its own process group and SIGKILL the whole group (the launcher and the trainer) once the
    trainer has started step ``step``: mid-step, and past a checkpoint but not at one. A recipe run by this
    interpreter in the tests' own environment is forked (:func:`.conftest.start_recipe`)."""
    if command[0] == sys.executable and not env:
        process = start_recipe(*command[1:])
    else:
        process = subprocess.Popen(command, cwd=ROOT, env=recipe_env(**(env or {})), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
    log = out / "sequence_ids" / "rank-0.jsonl"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if log.is_file() and any(json.loads(line)["step"] >= step for line in log.read_text().splitlines()):
                os.killpg(process.pid, signal.SIGKILL)
                break
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail(f"step {step} not reached in {timeout} s")
    finally:
        process.wait()
        _wait_until_the_group_is_gone(process.pid)
    assert process.returncode == -signal.SIGKILL


def _wait_until_the_group_is_gone(group: int, timeout: float = 60) -> None:
    """``wait()`` returns when the launcher is reaped; the trainer it started, killed with it, may still be exiting
    (and holding the output folder's lock) for a moment, and a rerun started at once is rightly refused. Wait until
    no thread of the group is alive. A process's main thread shows as a zombie while its other threads (torch's
    pools) are still exiting, and those hold its open files, the lock among them: so every thread counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in _group(group) if any(state not in ("Z", "X") for state in _thread_states(pid))]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"processes {alive} of the killed run are still alive after {timeout} s")


def _stat(path: Path) -> list[str]:
    """/proc/.../stat's fields after the command name (state, ppid, pgrp, ...); [] when the task is gone."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _group(group: int) -> list[str]:
    return [stat.parent.name for stat in Path("/proc").glob("[0-9]*/stat") if (f := _stat(stat)) and int(f[2]) == group]


def _thread_states(pid: str) -> list[str]:
    return [f[0] for stat in Path(f"/proc/{pid}/task").glob("*/stat") if (f := _stat(stat))]


@pytest.mark.parametrize("recipe", ["bert", "electra"])
def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(recipe, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert run_recipe(*_command(recipe, reference, launcher=False)).returncode == 0

    # BERT's run through `accelerate launch` (the launcher and its trainer killed as a group), ELECTRA's without.
    _kill_at_step(_command(recipe, killed) if recipe == "bert" else [sys.executable, *_command(recipe, killed, False)],
                  killed, step=13)
    assert not (killed / "model.safetensors").exists()  # it really died before the end
    from hf_pretrain.training import checkpoints as checkpointing

    # The newest complete checkpoint (one being written when the kill came has no manifest and is set aside).
    checkpoints = [int(Path(p).name.split("-")[1]) for p in checkpointing.checkpoints(str(killed))]
    assert checkpoints and checkpoints[-1] < STEPS
    resumed = run_recipe(*_command(recipe, killed, launcher=False))  # the rerun: launched or not, the same run
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"resuming from {killed / f'checkpoint-{checkpoints[-1]}'}" in resumed.stdout
    # Tied weights are saved once; the resume re-ties them without warning about "missing keys" (and the
    # losses below would differ if it did not).
    assert "missing keys" not in resumed.stdout

    # The same batches, step for step: no sequence repeated or skipped...
    expected = _batches(reference)
    assert len(expected) == STEPS
    assert _batches(killed) == expected
    # ...and, on CPU with the same seeds, the same loss at every step.
    assert _losses(killed) == pytest.approx(_losses(reference), abs=1e-5)
    assert len(_losses(killed)) == STEPS
    if recipe == "electra":
        history = json.loads((killed / "trainer_state.json").read_text())["log_history"]
        reference_history = json.loads((reference / "trainer_state.json").read_text())["log_history"]
        key = "replaced_fraction"
        assert [h[key] for h in history if key in h] == pytest.approx([h[key] for h in reference_history if key in h])


# --- crash-safe checkpoints (in process: a crash injected inside Trainer's own save) ----------------------------


def _trainer(tmp_path, tokenizer, **overrides):
    from datasets import DatasetDict
    from transformers import BertConfig, TrainingArguments

    from hf_pretrain.data.corpus import load_documents
    from hf_pretrain import TrainingBertForMaskedLM
    from hf_pretrain.training.data import build_pretraining_dataset
    from hf_pretrain.objectives.collators import DataCollatorForMaskedLM
    from hf_pretrain.objectives.metrics import MaskedLMMetrics
    from hf_pretrain.training.checkpoints import CheckpointManifestCallback
    from hf_pretrain.training.trainer import PretrainingTrainer

    from .conftest import synthetic_documents

    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(" ".join(doc) for doc in synthetic_documents(30)))
    sequences = build_pretraining_dataset(DatasetDict(train=load_documents([str(path)])), tokenizer,
                                          "mlm", max_seq_length=32)
    torch.manual_seed(0)
    model = TrainingBertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                               num_attention_heads=2, intermediate_size=64))
    settings = dict(output_dir=str(tmp_path / "out"), max_steps=6, save_steps=2, per_device_train_batch_size=8,
                    learning_rate=1e-3, report_to="none", use_cpu=True, logging_steps=1, dataloader_pin_memory=False,
                    remove_unused_columns=False)
    args = TrainingArguments(**{**settings, **overrides})
    return PretrainingTrainer(model=model, args=args, train_dataset=sequences["train"],
                              data_collator=DataCollatorForMaskedLM(tokenizer), processing_class=tokenizer,
                              step_metrics=MaskedLMMetrics(), callbacks=[CheckpointManifestCallback()])


def test_a_crash_while_saving_leaves_no_checkpoint_to_trust_but_the_complete_ones(tmp_path, tokenizer, monkeypatch):
    from transformers import AutoModelForMaskedLM, Trainer

    from hf_pretrain.training import checkpoints as checkpointing
    from hf_pretrain.training.resume import CheckpointManager

    trainer = _trainer(tmp_path, tokenizer)
    save_rng_state = Trainer._save_rng_state

    def dies_at_step_4(self, output_dir):
        if self.state.global_step == 4:  # the model and optimizer are written, the RNG states not yet
            raise KeyboardInterrupt("killed while saving")
        save_rng_state(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    out = tmp_path / "out"
    # The partial checkpoint has its weights but no manifest: it is not one of the checkpoints to trust.
    assert (out / "checkpoint-4" / "model.safetensors").is_file()
    assert [Path(c).name for c in checkpointing.checkpoints(str(out))] == ["checkpoint-2"]
    # The next run sets the partial checkpoint aside and resumes from the last complete one, which loads.
    last = CheckpointManager(trainer.args, {}).find()
    assert Path(last).name == "checkpoint-2"
    assert not (out / "checkpoint-4").exists() and (out / "bad-checkpoint-4" / "model.safetensors").is_file()
    assert AutoModelForMaskedLM.from_pretrained(last) is not None
    monkeypatch.undo()
    resumed = _trainer(tmp_path, tokenizer, save_total_limit=1)
    resumed.train(resume_from_checkpoint=last)
    assert resumed.state.global_step == 6
    # Outside the Trainer's rotation (which keeps one checkpoint here): kept for the user to look at.
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["bad-checkpoint-4", "checkpoint-6"]


def test_keep_last_n_checkpoints(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, save_steps=1, save_total_limit=2)
    trainer.train()
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(("checkpoint", "."))) == [
        "checkpoint-5", "checkpoint-6"
    ]
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    from hf_pretrain.training import checkpoints as checkpointing

    assert [Path(c).name for c in checkpointing.checkpoints(str(out))] == ["checkpoint-5", "checkpoint-6"]


def test_a_corrupted_checkpoint_is_named_and_the_newest_good_one_resumed(tmp_path, tokenizer, caplog):
    from hf_pretrain.training import checkpoints as checkpointing
    from hf_pretrain.training.resume import CheckpointManager

    trainer = _trainer(tmp_path, tokenizer, save_steps=2)
    trainer.train()
    weights = tmp_path / "out" / "checkpoint-6" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size, different bytes
    weights.write_bytes(bytes(data))
    assert checkpointing.verify(str(weights.parent)) == "model.safetensors does not match its checksum"
    with caplog.at_level("WARNING"):
        assert Path(CheckpointManager(trainer.args, {}).find()).name == "checkpoint-4"
    assert "checkpoint-6 is not a usable checkpoint (model.safetensors does not match its checksum)" in caplog.text


# --- non-finite losses (a learning rate of 1e30 makes the loss NaN at step 3 under the debug preset's seed) ---

NAN_RUN = ["--tokenizer_name", TOKENIZER, "--max_steps", "8", "--save_steps", "1", "--save_total_limit", "10",
           "--logging_steps", "1", "--eval_strategy", "no", "--learning_rate", "1e30", "--max_grad_norm", "0"]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


GOOD = "The last good checkpoint (saved before the loss rose, its weights finite and below 10000) is {}"


def test_nonfinite_loss_stops_the_run_at_that_step(tmp_path):
    result = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, *NAN_RUN, "--output_dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stdout
    assert "error: non-finite loss (nan) at step 3, batch of sequence ids [" in result.stdout
    # checkpoint-2's weights are finite but blown up (step 2's update at lr 2.5e29, the loss of step 3 they gave
    # is NaN): named, a resume from it would fail again at once. checkpoint-1's gave step 2 its finite loss.
    assert all(t.isfinite().all() for t in _weights(tmp_path / "checkpoint-2").values())
    assert max(t.abs().max() for t in _weights(tmp_path / "checkpoint-2").values()) > 1e10
    assert GOOD.format(tmp_path / "checkpoint-1") in result.stdout
    assert f"--resume_from_checkpoint {tmp_path / 'checkpoint-1'} and a lower --learning_rate" in result.stdout
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]


def test_the_named_checkpoint_resumes_with_a_lower_learning_rate(tmp_path):
    """The advice does not loop. At lr 1e3 the loss rises from step 3 and is NaN at step 9; checkpoints 2-8 all
    have finite weights (up to ~1e7), which the advice once called good, and a resume from them blew up again.
    The one named is from before the rise, and resuming from it at lr 1e-4 trains to the end."""
    common = ["--config", DEBUG, "--tokenizer_name", TOKENIZER, "--save_steps", "1", "--save_total_limit", "20",
              "--logging_steps", "1", "--eval_strategy", "no", "--max_steps", "12", "--output_dir", str(tmp_path)]
    blown = run_recipe("recipes/pretrain_bert.py", *common, "--learning_rate", "1e3")
    assert blown.returncode == 2 and "Traceback" not in blown.stdout, blown.stdout[-3000:]
    assert "non-finite loss (nan) at step 9" in blown.stdout
    assert all(t.isfinite().all() for t in _weights(tmp_path / "checkpoint-8").values())
    assert GOOD.format(tmp_path / "checkpoint-1") in blown.stdout
    resumed = run_recipe("recipes/pretrain_bert.py", *common, "--learning_rate", "1e-4",
                         "--resume_from_checkpoint", str(tmp_path / "checkpoint-1"))
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert json.loads((tmp_path / "trainer_state.json").read_text())["global_step"] == 12


def test_the_last_good_checkpoint_is_the_one_before_the_loss_rose():
    from hf_pretrain.training.checkpoints import last_step_before_the_loss_rose

    history = [{"step": 10, "loss": 7.0}, {"step": 20, "loss": 6.0}, {"step": 30, "loss": 5.5}, {"step": 40, "loss": 13.0},
               {"step": 50, "loss": float("nan")}]
    assert last_step_before_the_loss_rose(history, failed_step=55) == 30  # 13 > 2 x 5.5
    assert last_step_before_the_loss_rose(history[:3], failed_step=33) == 30
    assert last_step_before_the_loss_rose(history[:3], failed_step=30) == 20  # caught at a logged step: not that log
    assert last_step_before_the_loss_rose([{"step": 1, "loss": float("inf")}], failed_step=2) == 0
    assert last_step_before_the_loss_rose([{"step": 5, "eval_loss": 1.0}], failed_step=8) == 0


def test_non_finite_final_weights_are_not_saved_as_the_model(tmp_path, tokenizer):
    from hf_pretrain.training.run import check_final_weights

    trainer = _trainer(tmp_path, tokenizer)
    check_final_weights(trainer)  # finite: nothing said
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = float("nan")
    with pytest.raises(HfPretrainError, match="the trained weights hold NaN or infinite values, so they are not saved"):
        check_final_weights(trainer)


def test_nonfinite_loss_read_every_n_steps_is_named_at_its_step(tmp_path):
    # --host_sync_steps 4: the NaN of step 3 is read at step 4, after step 3's update (checkpoint-3 holds NaNs).
    result = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, *NAN_RUN, "--host_sync_steps", "4",
                        "--output_dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stdout
    assert "error: non-finite loss (nan) at step 3, batch of sequence ids [" in result.stdout
    assert "(found at step 4: --host_sync_steps 4 reads the device every 4 steps); training stopped after its update" \
        in result.stdout
    assert GOOD.format(tmp_path / "checkpoint-1") in result.stdout
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]


def test_nonfinite_loss_skips_the_update_by_flag(tmp_path):
    result = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, *NAN_RUN, "--on_nonfinite_loss", "skip",
                        "--max_nonfinite_skips", "7", "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "non-finite loss (nan) at step 3" in result.stdout and "skipping this optimizer step" in result.stdout
    # Every update from step 3 on met a NaN and was dropped: the final weights are those of step 2.
    final, step2 = _weights(tmp_path), _weights(tmp_path / "checkpoint-2")
    assert all(torch.equal(final[k], step2[k]) for k in step2)


def test_skipping_stops_after_n_non_finite_steps_in_a_row(tmp_path):
    """A run that skips every step learns nothing: the 5th non-finite step in a row (the default) stops it, and no
    final model is saved."""
    result = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, *NAN_RUN, "--on_nonfinite_loss", "skip",
                        "--output_dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stdout, result.stdout[-3000:]
    assert result.stdout.count("skipping this optimizer step") == 4
    assert ("error: non-finite loss (nan) at step 7, batch of sequence ids" in result.stdout
            and "5 optimizer steps in a row with a non-finite loss (steps 3-7, skipped), so training stopped "
            "(--max_nonfinite_skips 5)" in result.stdout)
    assert GOOD.format(tmp_path / "checkpoint-1") in result.stdout
    assert not (tmp_path / "model.safetensors").exists()


def test_a_lower_learning_rate_takes_effect_on_resume(tmp_path):
    """The advice after a blow-up (resume with a lower --learning_rate) works: the restored schedule is rescaled."""
    common = ["--config", DEBUG, "--tokenizer_name", TOKENIZER, "--lr_scheduler_type", "constant", "--warmup_steps",
              "0", "--save_steps", "4", "--logging_steps", "1", "--eval_strategy", "no", "--output_dir", str(tmp_path)]
    first = run_recipe("recipes/pretrain_bert.py", *common, "--max_steps", "4", "--learning_rate", "1e-3")
    assert first.returncode == 0, first.stdout[-3000:]
    resumed = run_recipe("recipes/pretrain_bert.py", *common, "--max_steps", "8", "--learning_rate", "1e-4",
                         "--resume_from_checkpoint", str(tmp_path / "checkpoint-4"))
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "resuming with --learning_rate 0.0001; the checkpoint's schedule peaked at 0.001" in resumed.stdout
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    rates = {h["step"]: h["learning_rate"] for h in history if "learning_rate" in h}
    assert [rates[s] for s in (1, 4)] == pytest.approx([1e-3, 1e-3])
    assert [rates[s] for s in (5, 6, 7, 8)] == pytest.approx([1e-4] * 4)


# --- the disk fills up, the user presses Ctrl-C -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs: room for the debug run's first checkpoint, not its second (needs root, as CI has)."""
    with tmpfs(tmp_path / "disk", "size=3M") as disk:
        yield disk


def test_a_full_disk_is_one_line_and_the_rerun_resumes_from_the_last_complete_checkpoint(small_disk):
    out = small_disk / "run"
    command = ["recipes/pretrain_bert.py", "--config", DEBUG, "--tokenizer_name", TOKENIZER, "--max_steps", "30",
               "--save_steps", "5", "--eval_strategy", "no", "--output_dir", str(out)]
    full = run_recipe(*command)
    assert full.returncode == 2 and "Traceback" not in full.stdout, full.stdout[-3000:]
    assert (f"error: --output_dir {out}: no space left on the device while saving" in full.stdout
            and f"rerun the same command; it resumes from {out / 'checkpoint-5'}" in full.stdout)
    subprocess.run(["mount", "-o", "remount,size=40M", str(small_disk)], check=True)  # the user frees space
    rerun = run_recipe(*command)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert f"resuming from {out / 'checkpoint-5'}" in rerun.stdout
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 30


def test_disk_full_is_told_from_every_writer_s_error(tmp_path):
    import errno

    from hf_pretrain.errors import disk_full

    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"))
    torch_write = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    assert not disk_full(torch_write)  # without a folder to look at, torch's message says too little
    assert disk_full(torch_write, str(tmp_path), needed=2**62) and not disk_full(torch_write, str(tmp_path), needed=1)
    assert not disk_full(OSError(errno.EACCES, "Permission denied"), str(tmp_path), needed=2**62)
