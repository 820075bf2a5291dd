"""Several processes and several machines, simulated on this one as `accelerate launch` processes over gloo on
127.0.0.1 (the only address here). A one-machine run that only compares against another is started as the launcher
starts its trainers (``conftest.run_processes``); the launcher itself runs for two machines and for its configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DEBUG, ROOT, free_port, recipe_env, run_processes, run_recipe

pytestmark = pytest.mark.end_to_end

ACCELERATE = str(Path(sys.executable).parent / "accelerate")
PRETRAIN = "recipes/pretrain_bert.py"



def _launch(machines: int, machine_rank: int, port: int, out: Path, *flags: str, processes: int = 2) -> list[str]:
    """``processes`` in all, over ``machines`` machines; the tokenizer is trained by the run (global rank 0)."""
    # --multi_gpu is how accelerate starts several processes (torchrun: gloo on a machine without GPUs).
    return [ACCELERATE, "launch", *(["--multi_gpu"] if processes > 1 else []), "--num_processes", str(processes),
            "--num_machines", str(machines),
            "--machine_rank", str(machine_rank), "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
            "--mixed_precision", "no", "--dynamo_backend", "no", *_recipe(out, *flags)]


def _recipe(out: Path, *flags: str) -> list[str]:
    return [PRETRAIN, "--config", DEBUG, "--eval_strategy", "no", "--logging_steps", "1", "--log_sequence_ids",
            "--output_dir", str(out), *(flags or ("--max_steps", "4", "--save_strategy", "no"))]


def _run(command: list[str]) -> str:
    result = subprocess.run(command, cwd=ROOT, env=recipe_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def _sequences(out: Path, rank: int) -> list[list[int]]:
    lines = (out / "sequence_ids" / f"rank-{rank}.jsonl").read_text().splitlines()
    return [json.loads(line)["sequence_ids"] for line in lines]


def _losses(out: Path) -> list[float]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return [h["loss"] for h in history if "loss" in h]


def test_two_machines_train_what_one_machine_with_two_processes_trains(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    single = run_processes(*_recipe(one))  # the trainers as the launcher starts them on one machine
    assert single.returncode == 0, single.stdout[-3000:]

    # Machine 1's process is its machine's main process but not the run's: it must take the tokenizer that global
    # rank 0 trains (over the process group, as machines without a shared file system would), not look for it.
    port = free_port()
    machines = [subprocess.Popen(_launch(2, rank, port, two), cwd=ROOT, env=recipe_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = [machine.communicate(timeout=300)[0] for machine in machines]
    for machine, output in zip(machines, outputs):
        assert machine.returncode == 0, output[-3000:]

    assert json.loads((two / "trainer_state.json").read_text())["global_step"] == 4
    ranks = [_sequences(two, rank) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 4
    assert not {i for batch in ranks[0] for i in batch} & {i for batch in ranks[1] for i in batch}  # disjoint
    for rank in (0, 1):  # each rank trains what the same rank of one machine trains...
        assert ranks[rank] == _sequences(one, rank)
    assert _losses(two) == _losses(one)  # ...and the loss is the same at every step (CPU, deterministic)
    assert (two / "tokenizer.json").read_bytes() == (one / "tokenizer.json").read_bytes()


def _steps(out: Path, world_size: int) -> dict[int, set[int]]:
    """step -> the sequence ids it trained, over every process and micro-batch (the resumed run's own records
    replace the first run's of the same steps)."""
    records = {}
    for rank in range(world_size):
        path = out / "sequence_ids" / f"rank-{rank}.jsonl"
        for line in path.read_text().splitlines() if path.is_file() else []:
            record = json.loads(line)
            records[(record["step"], rank, record["micro_batch"])] = record["sequence_ids"]
    steps: dict[int, set[int]] = {}
    for (step, _, _), ids in records.items():
        steps.setdefault(step, set()).update(ids)
    return steps


def test_resuming_on_fewer_processes_keeps_the_global_batch_and_the_data_order(tmp_path):
    elastic, reference = tmp_path / "elastic", tmp_path / "reference"
    # A constant learning rate (the first run's schedule does not depend on its --max_steps) and no dropout (drawn
    # per process, so it differs between layouts).
    flags = ("--lr_scheduler_type", "constant", "--save_steps", "2", "--tokenizer_name",
             str(ROOT / "tests" / "golden" / "debug_tokenizer"), "--config_overrides",
             "hidden_dropout_prob=0,attention_probs_dropout_prob=0")
    first = run_processes(*_recipe(elastic, *flags, "--max_steps", "2", "--per_device_train_batch_size", "8"))
    assert first.returncode == 0, first.stdout[-3000:]
    # Two processes x 8 sequences then; one process x 8 now: accumulation 2 makes the same 16 per step.
    # One process needs no launcher (a run without one is a one-process run): forked, its imports done.
    resumed = run_recipe(*_recipe(elastic, *flags, "--max_steps", "4", "--per_device_train_batch_size", "8"))
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "with --gradient_accumulation_steps 2 instead of 1" in resumed.stdout
    reference_run = run_recipe(*_recipe(reference, *flags, "--max_steps", "4", "--per_device_train_batch_size", "16"))
    assert reference_run.returncode == 0, reference_run.stdout[-3000:]
    assert _steps(elastic, 2) == _steps(reference, 1)  # every step trains the same 16 sequences
    assert len(_steps(reference, 1)) == 4
    # Nearly the same loss: each micro-batch's loss is the mean over its own masked tokens, so 2 x 8 sequences weigh
    # the tokens a little differently from 1 x 16 (Trainer's way for a model that does not take num_items_in_batch).
    assert _losses(elastic) == pytest.approx(_losses(reference), rel=5e-3)


def test_the_accelerate_configs_parse_and_fsdp_on_a_cpu_says_it_runs_as_ddp(tmp_path):
    from accelerate.commands.config.config_args import ClusterConfig

    expected = {"ddp": "MULTI_GPU", "fsdp2": "FSDP", "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED"}
    configs = {path.stem: path for path in (ROOT / "recipes" / "accelerate").glob("*.yaml")}
    assert set(configs) == set(expected)
    for name, path in configs.items():
        config = ClusterConfig.from_yaml_file(str(path))  # unknown or misspelt keys raise here
        assert config.distributed_type.value == expected[name], name
    assert ClusterConfig.from_yaml_file(str(configs["fsdp2"])).fsdp_config["fsdp_version"] == 2
    assert ClusterConfig.from_yaml_file(str(configs["deepspeed_zero3"])).deepspeed_config == {
        "zero_stage": 3, "zero3_init_flag": True, "zero3_save_16bit_model": True, "offload_optimizer_device": "none",
        "offload_param_device": "none"}

    # accelerate turns FSDP on for accelerator devices only: on this CPU the run is DDP, and says so.
    command = [ACCELERATE, "launch", "--config_file", str(configs["fsdp2"]), "--mixed_precision", "no",
               "--main_process_port", str(free_port()), PRETRAIN, "--config", DEBUG, "--objective", "mlm",
               "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no", "--tokenizer_name",
               str(ROOT / "tests" / "golden" / "debug_tokenizer"), "--output_dir", str(tmp_path)]
    output = _run(command)
    assert output.count("the accelerate config asks for FSDP, but accelerate enables it on GPUs") == 2  # each rank
    assert "this run is MULTI_CPU, with every parameter replicated" in output
