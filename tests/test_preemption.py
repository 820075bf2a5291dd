"""Preemption and shared output folders, as clusters have them: SIGTERM and Ctrl-C checkpoint the step in progress
(one process and two), a second Ctrl-C stops at once, and a second run on a live run's output folder is refused. Real
signals, real concurrent processes; every case is a ``faults`` case."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, free_port, run_recipe, start_recipe
from .test_faults import ACCELERATE, RECIPES, TOKENIZER, _batches, _losses

pytestmark = [pytest.mark.end_to_end, pytest.mark.faults]


def _start(command: list[str], out: Path) -> subprocess.Popen:
    """A run in its own process group, SIGINT at its default (:func:`.conftest.start_recipe`): a recipe run by this
    interpreter is forked, a launcher gets a process of its own."""
    if command[0] == sys.executable:
        return start_recipe(*command[1:])
    return start_recipe(*command[1:], launcher=command[:1])


def _wait_for_step(process: subprocess.Popen, out: Path, step: int, rank: int = 0, timeout: float = 300) -> None:
    log = out / "sequence_ids" / f"rank-{rank}.jsonl"
    deadline = time.monotonic() + timeout
    while not (log.is_file() and any(json.loads(line)["step"] >= step for line in log.read_text().splitlines())):
        assert process.poll() is None, f"the run ended before step {step}: {process.communicate()[0][-3000:]}"
        assert time.monotonic() < deadline, f"step {step} not reached in {timeout} s"
        time.sleep(0.05)


def _checkpoint_steps(out: Path) -> list[int]:
    from hf_pretrain.training import checkpoints as checkpointing

    return [int(path.rsplit("-", 1)[1]) for path in checkpointing.checkpoints(str(out))]  # complete ones only


# A run far longer than a test, so that a signal lands mid-training (the debug preset does 40 steps/s); a constant
# learning rate, so that a resumed run and a reference run of another length train the same steps alike.
def _long_command(out: Path, *extra: str) -> list[str]:
    return [*RECIPES["bert"], "--tokenizer_name", TOKENIZER, "--save_steps", "1000", "--logging_steps", "1",
            "--eval_strategy", "no", "--log_sequence_ids", "--lr_scheduler_type", "constant", "--output_dir", str(out),
            *extra]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_step_in_progress_and_the_rerun_resumes_exactly(signum, tmp_path):
    run, reference = tmp_path / "run", tmp_path / "reference"
    process = _start([sys.executable, *_long_command(run, "--max_steps", "100000")], run)
    _wait_for_step(process, run, 8)
    os.killpg(process.pid, signum)  # as a scheduler (SIGTERM) or a terminal's Ctrl-C (SIGINT) signals a job
    output, _ = process.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum and "Traceback" not in output, output[-3000:]
    (stopped,) = _checkpoint_steps(run)  # no periodic checkpoint was due (every 1,000 steps): this is the signal's
    assert stopped >= 8
    assert (f"interrupted: stopped by {name} at step {stopped}, its checkpoint saved in {run}/checkpoint-{stopped}: "
            "rerun the same command to resume from it") in output
    assert not (run / "model.safetensors").exists()  # the final model is not written by a stopped run

    end = stopped + 3
    rerun = run_recipe(*_long_command(run, "--max_steps", str(end)))
    assert rerun.returncode == 0 and f"resuming from {run / f'checkpoint-{stopped}'}" in rerun.stdout, rerun.stdout[-3000:]
    assert run_recipe(*_long_command(reference, "--max_steps", str(end))).returncode == 0
    assert _batches(run) == _batches(reference)  # every step once, none lost to the signal or trained twice
    assert _losses(run) == pytest.approx(_losses(reference), abs=1e-5)


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    # The first Ctrl-C asks for a checkpoint at the step's end; one more before that is done stops the run now.
    # The step is slowed (a batch of 1,024 rows: seconds) so that both land inside one step, apart enough for
    # Python to handle each (two signals before its handler runs are one).
    process = _start([sys.executable, *_long_command(tmp_path, "--max_steps", "100000", "--per_device_train_batch_size",
                                                     "1024")], tmp_path)
    _wait_for_step(process, tmp_path, 1)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in output, output[-3000:]
    assert "interrupted: the run stopped; rerun the same command to resume from its last checkpoint" in output
    assert _checkpoint_steps(tmp_path) == []


def test_two_processes_stop_at_the_same_step_on_a_signal(tmp_path):
    # torchrun (accelerate launch --multi_gpu) and its two trainers all get the signal, as from a scheduler.
    command = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
               "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               *_long_command(tmp_path, "--max_steps", "100000")]
    process = _start(command, tmp_path)
    _wait_for_step(process, tmp_path, 6, rank=1)
    os.killpg(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=180)
    assert process.returncode != 0
    (stopped,) = _checkpoint_steps(tmp_path)
    assert output.count(f"interrupted: stopped by SIGTERM at step {stopped}") == 2, output[-3000:]
    for rank in (0, 1):  # both trained up to that step and not beyond
        records = (tmp_path / "sequence_ids" / f"rank-{rank}.jsonl").read_text().splitlines()
        assert max(json.loads(line)["step"] for line in records) == stopped


def test_a_live_run_s_output_dir_is_refused_and_a_killed_run_s_lock_taken_over(tmp_path):
    first = _start([sys.executable, *_long_command(tmp_path, "--max_steps", "100000", "--save_steps", "5")], tmp_path)
    try:
        _wait_for_step(first, tmp_path, 6)  # past its first checkpoint (step 5), which the third run resumes
        second = run_recipe(*_long_command(tmp_path, "--max_steps", "10", "--seed", "7"), timeout=120)
        assert second.returncode == 2 and "Traceback" not in second.stdout, second.stdout[-3000:]
        assert (f"error: --output_dir {tmp_path} is in use by another run (pid {first.pid} on host "
                f"{socket.gethostname()}, started ") in second.stdout
        assert first.poll() is None  # the live run goes on, untouched
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert (tmp_path / ".hf_pretrain.lock").is_file()  # a killed run cannot clean up: its lock file stays
    end = _checkpoint_steps(tmp_path)[-1] + 2
    third = run_recipe(*_long_command(tmp_path, "--max_steps", str(end), "--save_steps", "5"))
    assert third.returncode == 0, third.stdout[-3000:]
    assert f"taking over the lock of a run that ended without releasing it (pid {first.pid} on host" in third.stdout
    assert "resuming from" in third.stdout
    assert not (tmp_path / ".hf_pretrain.lock").exists()  # released at the end
