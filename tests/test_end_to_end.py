"""Layer 3: the recipes as a user runs them: pretrain -> checkpoint -> plain transformers -> GLUE, resume, DDP,
the Hub, and bad input stopped before training with one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import BertConfig

from .conftest import DEBUG, ROOT, free_port, run_processes, run_recipe
from .hub_server import LoopbackHub

pytestmark = pytest.mark.end_to_end

PRETRAIN = "recipes/pretrain_bert.py"
FINETUNE = "recipes/finetune_glue.py"
GLUE_CONFIG = "recipes/configs/glue.yaml"
GOLDEN = ROOT / "tests" / "golden"
FAST = ["--config", DEBUG, "--max_steps", "12", "--save_steps", "6", "--eval_steps", "6", "--logging_steps", "3"]


def _ok(result):
    assert result.returncode == 0, result.stdout[-4000:]
    return result


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The debug preset pretrained (MLM + NSP) on the embedded corpus, with the golden run's tokenizer."""
    out = tmp_path_factory.mktemp("pretrained")
    _ok(run_recipe(PRETRAIN, *FAST, "--tokenizer_name", str(GOLDEN / "debug_tokenizer"), "--output_dir", str(out)))
    return out


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory) -> Path:
    from .test_glue import FIXTURES, write_task

    root = tmp_path_factory.mktemp("glue")
    header, rows = FIXTURES["MRPC"]
    write_task(root, "MRPC", header, rows * 20)
    return root


def test_checkpoint_is_standard_and_loads_without_hf_pretrain(checkpoint):
    files = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt")) and name != "training_args.bin" for name in files)
    assert ".hf_pretrain.lock" not in files  # the run released its output folder
    # A fresh interpreter in which importing hf_pretrain is impossible.
    probe = (
        "import sys; sys.modules['hf_pretrain'] = None\n"
        "from transformers import AutoTokenizer, AutoModelForPreTraining, AutoModelForMaskedLM, "
        "AutoModelForSequenceClassification\n"
        f"d = {str(checkpoint)!r}\n"
        "tok = AutoTokenizer.from_pretrained(d)\n"
        "for auto in (AutoModelForPreTraining, AutoModelForMaskedLM, AutoModelForSequenceClassification):\n"
        "    model = auto.from_pretrained(d)\n"
        "out = AutoModelForMaskedLM.from_pretrained(d)(**tok('a [MASK] sentence', return_tensors='pt'))\n"
        "print('LOADED', type(tok).__name__, tuple(out.logits.shape))\n"
    )
    result = _ok(run_recipe("-c", probe))
    assert re.search(r"LOADED BertTokenizer \(1, \d+, 2000\)", result.stdout)


def test_model_card_and_logged_metrics(checkpoint):
    card = (checkpoint / "README.md").read_text()
    for fact in ("masked LM + next-sentence prediction", "Python standard-library docstrings", "| steps | 12 |", "debug_tokenizer",
                 "tokens seen", "mlm_accuracy", "perplexity", "nsp_accuracy", "library_name: transformers"):
        assert fact in card
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    train_logs = [h for h in history if "loss" in h]
    assert len(train_logs) == 4
    assert all({"mlm_loss", "mlm_accuracy", "nsp_accuracy", "nsp_loss", "train_tokens_per_second"} <= h.keys()
               for h in train_logs)
    evals = [h for h in history if "eval_loss" in h]
    assert evals and all({"eval_mlm_accuracy", "eval_perplexity", "eval_nsp_accuracy"} <= h.keys() for h in evals)
    assert (checkpoint / "checkpoint-12").is_dir() and (checkpoint / "checkpoint-6").is_dir()


def test_debug_preset_learns_and_matches_the_golden_losses(tmp_path):
    """Same seed, same losses: a silent change to data, tokenizer, masking, model or optimizer shows up here. The
    golden run learns (validation loss down by over 20 % from its start), so it guards learning too."""
    golden = json.loads((GOLDEN / "debug_losses.json").read_text())
    command = golden["command"].split()[1:]  # "python recipes/pretrain_bert.py ..."
    _ok(run_recipe(*command, "--output_dir", str(tmp_path)))
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    train = {str(h["step"]): h["loss"] for h in history if "loss" in h}
    evals = {str(h["step"]): h["eval_loss"] for h in history if "eval_loss" in h}
    assert train == pytest.approx(golden["train_loss"], abs=2e-3)
    assert evals == pytest.approx(golden["eval_loss"], abs=2e-3)
    assert evals["200"] < 0.8 * evals["0"]


def test_finetune_glue_from_checkpoint(checkpoint, glue_dir, tmp_path):
    result = _ok(run_recipe(
        FINETUNE, "--config", GLUE_CONFIG, "--model_name_or_path", str(checkpoint), "--task_name", "mrpc",
        "--glue_dir", str(glue_dir), "--output_dir", str(tmp_path), "--seeds", "1", "2", "--max_steps", "3",
        "--max_seq_length", "512",
    ))
    # Past the checkpoint's 128 positions, the length is capped (the embedding lookup would fail), and said.
    assert f"--max_seq_length 512 is longer than {checkpoint}'s position embeddings take (128 tokens): using 128" \
        in result.stdout
    results = json.loads((tmp_path / "glue_results.json").read_text())
    assert results["seeds"] == [1, 2] and len(results["runs"]) == 2
    assert set(results["summary"]) == {"validation_accuracy", "validation_f1"}
    assert 0 <= results["summary"]["validation_accuracy"]["mean"] <= 1
    assert "| MRPC |" in (tmp_path / "glue_results.md").read_text() and "| MRPC |" in result.stdout
    classifier = tmp_path / "seed_1"
    assert (classifier / "model.safetensors").is_file() and (classifier / "README.md").is_file()
    config = json.loads((classifier / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and len(config["id2label"]) == 2


def test_the_random_init_baseline_has_the_pretrained_models_head(checkpoint):
    """--from_scratch draws every weight afresh, but its task head (what a probe or LoRA trains) is the same."""
    import torch

    from hf_pretrain.glue.finetune import load_classifier
    from hf_pretrain.glue.tasks import GLUE_TASKS

    pretrained, head = load_classifier(GLUE_TASKS["mrpc"], str(checkpoint), from_scratch=False)
    scratch, scratch_head = load_classifier(GLUE_TASKS["mrpc"], str(checkpoint), from_scratch=True)
    assert head == scratch_head == ["classifier.bias", "classifier.weight"]
    embeddings = [m.bert.embeddings.word_embeddings.weight for m in (pretrained, scratch)]
    assert not torch.equal(*embeddings)


@pytest.mark.parametrize("adaptation", ["linear_probe", "lora"])
def test_linear_probe_and_lora_train_and_reload_without_hf_pretrain(checkpoint, glue_dir, tmp_path, adaptation):
    _ok(run_recipe(FINETUNE, "--config", GLUE_CONFIG, "--model_name_or_path", str(checkpoint), "--task_name", "mrpc",
                   "--glue_dir", str(glue_dir), "--output_dir", str(tmp_path), "--max_steps", "3", "--learning_rate",
                   "1e-2", "--adaptation", adaptation))
    saved = tmp_path / "seed_1"
    assert f"| adaptation | {adaptation} |" in (saved / "README.md").read_text()
    # In a process that cannot import hf_pretrain: which weights moved, and (LoRA) the adapter loaded by peft over
    # the pretrained checkpoint gives the merged model's logits.
    probe = (
        "import sys, torch; sys.modules['hf_pretrain'] = None\n"
        "from safetensors.torch import load_file\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        f"ckpt, saved = {str(checkpoint)!r}, {str(saved)!r}\n"
        "before, after = load_file(ckpt + '/model.safetensors'), load_file(saved + '/model.safetensors')\n"
        "moved = sorted(k for k in after if k in before and not torch.equal(before[k], after[k]))\n"
        "print('MOVED', ' '.join(sorted({k.split('.')[-2] for k in moved})), 'CLASSIFIER' if 'classifier.weight' in after else '')\n"
        "merged = AutoModelForSequenceClassification.from_pretrained(saved).eval()\n"
        "batch = AutoTokenizer.from_pretrained(saved)('He said yes .', 'He agreed .', return_tensors='pt')\n"
        "if {adaptation!r} == 'lora':\n"
        "    from peft import PeftModel\n"
        "    base = AutoModelForSequenceClassification.from_pretrained(ckpt, num_labels=2)\n"
        "    adapted = PeftModel.from_pretrained(base, saved + '/adapter').eval()\n"
        "    with torch.no_grad():\n"
        "        print('SAME_LOGITS', torch.allclose(adapted(**batch).logits, merged(**batch).logits, atol=1e-5))\n"
    ).replace("{adaptation!r}", repr(adaptation))
    result = _ok(run_recipe("-c", probe))
    if adaptation == "linear_probe":  # the encoder (and the NSP-trained pooler) frozen: nothing of it moved
        assert "MOVED  CLASSIFIER" in result.stdout
    else:  # adapters on query and value only, merged into them
        assert "MOVED query value CLASSIFIER" in result.stdout and "SAME_LOGITS True" in result.stdout


def test_the_probe_runs_every_n_steps_and_at_the_end(glue_dir, tmp_path):
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm", "--max_steps", "7", "--eval_strategy", "no",
                   "--save_strategy", "no", "--tokenizer_name", str(GOLDEN / "debug_tokenizer"), "--probe_tasks", "mrpc",
                   "--probe_every", "3", "--logging_steps", "3", "--glue_dir", str(glue_dir), "--output_dir",
                   str(tmp_path)))
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    probes = {h["step"]: h["probe_mrpc_accuracy"] for h in history if "probe_mrpc_accuracy" in h}
    assert list(probes) == [3, 6, 7] and all(0 <= v <= 1 for v in probes.values())
    assert [h["step"] for h in history if "loss" in h] == [3, 6]  # the training logs at those steps still happen
    # The run's report: its figures (PNG files of the drawn size) and report.md, linked from the model card.
    from PIL import Image

    for name in ("loss.png", "mlm_accuracy.png", "learning_rate.png", "tokens_per_second.png", "probes.png"):
        with Image.open(tmp_path / "figures" / name) as image:
            assert image.format == "PNG" and image.size == (1000, 360)
    report = (tmp_path / "report.md").read_text()
    assert "![linear probes](figures/probes.png)" in report and "| learning_rate | 0.001 |" in report
    assert "[report.md](report.md)" in (tmp_path / "README.md").read_text()
    refused = run_recipe(PRETRAIN, "--config", DEBUG, "--probe_tasks", "mrcp", "--output_dir", str(tmp_path / "x"))
    assert refused.returncode == 2 and "--probe_tasks: 'mrcp' is not a GLUE task" in refused.stdout


def test_report_to_tensorboard_works_offline(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "4", "--logging_steps", "2", "--eval_steps", "4",
                   "--save_strategy", "no", "--report_to", "tensorboard", "--tokenizer_name",
                   str(GOLDEN / "debug_tokenizer"), "--output_dir", str(tmp_path)))
    (run,) = (tmp_path / "runs").iterdir()
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/mlm_accuracy", "train/learning_rate", "eval/loss", "eval/mlm_accuracy"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4]


def test_finetune_every_task_in_one_command_and_compare(checkpoint, tmp_path):
    from .test_glue import FIXTURES, write_task

    glue = tmp_path / "glue"
    for folder, (header, rows) in FIXTURES.items():
        if folder != "QQP":  # one task left out: listed as missing
            files = ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv") if folder == "MNLI" else ("train.tsv", "dev.tsv")
            write_task(glue, folder, header, rows * 4, files)
    out = tmp_path / "all"
    result = _ok(run_recipe(
        FINETUNE, "--config", GLUE_CONFIG, "--model_name_or_path", str(checkpoint), "--task_name", "all",
        "--glue_dir", str(glue), "--output_dir", str(out), "--max_steps", "1",
        "--task_overrides", '{"rte": {"learning_rate": 0.003}}',
    ))
    table = json.loads((out / "glue_results.json").read_text())
    assert list(table["tasks"]) == ["cola", "sst2", "mrpc", "stsb", "mnli", "qnli", "rte", "wnli"]
    assert table["missing"] == ["qqp"] and table["left_out"] == ["wnli"]
    assert table["averaged_over"] == ["cola", "sst2", "mrpc", "stsb", "mnli", "qnli", "rte"]
    assert table["average"] == pytest.approx(sum(table["task_scores"][t] for t in table["averaged_over"]) / 7)
    assert "validation_matched_accuracy" in table["tasks"]["mnli"]["summary"]
    from PIL import Image

    with Image.open(out / "glue_results.png") as chart:
        assert chart.format == "PNG" and chart.size[0] > chart.size[1] > 100
    markdown = (out / "glue_results.md").read_text()
    assert "| **GLUE score** | mean over 7 tasks" in markdown and "Missing (no folder in --glue_dir): QQP." in markdown
    assert markdown in result.stdout
    assert (out / "rte" / "seed_1" / "model.safetensors").is_file()
    assert "| learning rate | 0.003 |" in (out / "rte" / "seed_1" / "README.md").read_text()
    assert "| learning rate | 0.0001 |" in (out / "mrpc" / "seed_1" / "README.md").read_text()

    compared = _ok(run_recipe(str(Path(sys.executable).parent / "hf-pretrain"), "compare", str(out),
                              str(out / "mrpc")))
    mrpc_score = f"{table['task_scores']['mrpc']:.1f}"
    assert f"| mrpc | {mrpc_score} | {mrpc_score} |" in compared.stdout
    assert f"| GLUE score | {table['average']:.1f} (over cola, sst2, mrpc, stsb, mnli, qnli, rte) |" in compared.stdout


@pytest.mark.faults
def test_two_fresh_runs_train_the_same_tokenizer_and_the_same_first_loss(tmp_path):
    """The same command twice, each training its own tokenizer: the same vocabulary, so the same step-1 loss (a
    vocabulary of 4,000 reaches the rare merges where ties are many: before the fix, the two runs differed)."""
    for run in ("a", "b"):
        _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--vocab_size", "4000", "--max_steps", "1", "--logging_steps", "1",
                       "--eval_strategy",
                       "no", "--save_strategy", "no", "--output_dir", str(tmp_path / run)))
    tokenizers = [(tmp_path / run / "tokenizer.json").read_bytes() for run in ("a", "b")]
    losses = [json.loads((tmp_path / run / "trainer_state.json").read_text())["log_history"][0]["loss"]
              for run in ("a", "b")]
    assert tokenizers[0] == tokenizers[1] and losses[0] == losses[1]


@pytest.mark.faults
def test_resuming_a_final_folder_is_refused_and_names_its_last_checkpoint(checkpoint, tmp_path):
    """A run's final folder has no optimizer or scheduler: resuming it would restart the schedule at its peak."""
    result = run_recipe(PRETRAIN, *FAST, "--tokenizer_name", str(GOLDEN / "debug_tokenizer"), "--output_dir",
                        str(tmp_path), "--resume_from_checkpoint", str(checkpoint))
    assert result.returncode == 2 and "Traceback" not in result.stdout
    assert (f"{checkpoint}: a saved model, not a training checkpoint (no optimizer or scheduler state): resume from "
            f"{checkpoint / 'checkpoint-12'}, or pass --model_name_or_path {checkpoint}") in result.stdout


@pytest.mark.faults
def test_a_checkpoint_that_lost_its_tokenizer_is_named_on_resume(tmp_path):
    from hf_pretrain.training.checkpoints import write_manifest

    command = [PRETRAIN, "--config", DEBUG, "--save_steps", "2", "--eval_strategy", "no", "--output_dir", str(tmp_path)]
    _ok(run_recipe(*command, "--max_steps", "2"))
    last = tmp_path / "checkpoint-2"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (last / name).unlink()
    write_manifest(str(last))  # a checkpoint that verifies, but whose tokenizer is gone
    result = run_recipe(*command, "--max_steps", "4")
    assert result.returncode == 2 and "Traceback" not in result.stdout
    assert f"error: resuming from the checkpoint {last}: the folder holds no tokenizer" in result.stdout


@pytest.mark.faults
def test_resume_continues_from_the_saved_step(checkpoint, tmp_path):  # and refuses another run's checkpoint
    out = tmp_path / "run"
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "6", "--save_steps", "6", "--eval_strategy", "no",
                   "--logging_steps", "2", "--output_dir", str(out)))
    resumed = _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "10", "--save_steps", "6",
                             "--eval_strategy", "no", "--logging_steps", "2", "--output_dir", str(out)))
    assert "resuming from" in resumed.stdout and "checkpoint-6" in resumed.stdout
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 10
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert steps == [2, 4, 6, 8, 10]  # the first run's logs, then the resumed ones from step 6 on
    assert json.loads((out / "checkpoint-6" / "run_settings.json").read_text())["vocab_size"] == 2000
    # The resumed run's report covers the whole run, drawn from the log history it carried on.
    assert (out / "report.md").read_text().startswith("# Run report: run\n\n10 optimizer steps")
    from hf_pretrain.hub.report import write_run_report  # what `hf-pretrain report DIR` runs

    (out / "figures" / "loss.png").unlink()
    assert write_run_report(str(out)) == str(out / "report.md") and (out / "figures" / "loss.png").stat().st_size > 1000

    # Another corpus or vocabulary in the same folder is another run: refused before any data work...
    other = run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "12", "--vocab_size", "500", "--output_dir", str(out))
    assert other.returncode == 2 and "Traceback" not in other.stdout
    last = other.stdout.strip().splitlines()[-1]
    assert last.startswith(f"error: {out}/checkpoint-") and "belongs to another run (--vocab_size 2000 then, 500 now)" in last
    assert "pass --overwrite_output_dir" in last
    # Named explicitly, or with a batch layout that cannot make its global batch: tests/test_resume.py.
    # A layout that can make it is resumed with the accumulation that makes it (tests/test_distributed.py checks the
    # order).
    halved = _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "12", "--per_device_train_batch_size", "8",
                            "--save_steps", "6", "--eval_strategy", "no", "--output_dir", str(out)))
    assert "with --gradient_accumulation_steps 2 instead of 1" in halved.stdout
    assert json.loads((out / "checkpoint-12" / "run_settings.json").read_text())["gradient_accumulation_steps"] == 2
    # ...unless --overwrite_output_dir asks for a fresh start.
    fresh = _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "2", "--vocab_size", "500", "--save_steps", "2",
                           "--eval_strategy", "no", "--overwrite_output_dir", "--output_dir", str(out)))
    assert "resuming from" not in fresh.stdout
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2


def test_mlm_only_with_static_whole_word_masking_in_bf16(tmp_path):
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm", "--masking", "static", "--bf16",
                   "--masking_unit", "whole_word", "--duplication_factor", "2", "--max_steps", "4", "--eval_steps", "4",
                   "--save_strategy", "no", "--output_dir", str(tmp_path)))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]
    card = (tmp_path / "README.md").read_text()
    for fact in ("static (x2)", "| precision | bf16 |", "| masking unit | whole_word |", "| sparse MLM prediction | yes |",
                 "full sentences (attention across the documents of a sequence)"):
        assert fact in card


def test_span_masking_on_isolated_documents_with_full_logits(tmp_path):
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm", "--isolate_documents", "--masking_unit", "span",
                   "--sparse_prediction", "false", "--max_steps", "4", "--eval_steps", "4", "--logging_steps", "2",
                   "--save_strategy", "no", "--output_dir", str(tmp_path)))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]
    card = (tmp_path / "README.md").read_text()
    for fact in ("span (geometric p=0.2, max 10 words)", "documents isolated (block-diagonal attention",
                 "| sparse MLM prediction | no |"):
        assert fact in card
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    assert all(0 <= h["mlm_accuracy"] <= 1 for h in history if "loss" in h)
    assert any("eval_perplexity" in h for h in history)


def test_two_process_ddp_over_gloo(tmp_path, glue_dir):
    result = _ok(run_processes(
        # Two trainers as `accelerate launch --multi_gpu` starts them (torchrun; gloo on a machine without GPUs).
        # SpanBERT's objective: a training-only head beside the encoder, two weighted losses, under DDP.
        PRETRAIN, "--config", DEBUG, "--objective", "mlm_sbo", "--objective_weights", "sbo=0.5",
        "--max_steps", "4", "--eval_steps", "4", "--save_strategy", "no", "--logging_steps", "2",
        # The probe runs on the main process only, at a logging step: the other process must not wait for it.
        "--probe_tasks", "mrpc", "--probe_every", "2", "--glue_dir", str(glue_dir),
        "--output_dir", str(tmp_path),
    ))
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert "| batch size (global) | 32 |" in (tmp_path / "README.md").read_text()  # 16 per process x 2
    assert result.stdout.count("'mlm_accuracy'") >= 2  # logged at steps 2 and 4
    history = state["log_history"]
    assert [h["step"] for h in history if "loss" in h] == [2, 4]
    assert [h["step"] for h in history if "probe_mrpc_accuracy" in h] == [2, 4]
    assert all(h["sbo_loss"] > 0 and 0 <= h["sbo_accuracy"] <= 1 for h in history if "loss" in h)
    assert any("eval_sbo_loss" in h for h in history)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]  # the SBO head is training-only



@pytest.mark.faults
def test_push_to_hub_sends_model_tokenizer_and_card_never_the_token(tmp_path, glue_dir):
    token = "hf_loopbackSECRETtoken123"
    with LoopbackHub() as hub:
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"}
        result = _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "2", "--eval_strategy", "no",
                                "--save_strategy", "no", "--output_dir", str(tmp_path / "model"), "--push_to_hub",
                                "--hub_model_id", "user/tiny-bert", "--hub_token", token, env=env))
    assert hub.repos == ["user/tiny-bert"]
    (commit,) = hub.commits
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"} <= set(commit["files"])
    assert not any(path.startswith("checkpoint-") or path.endswith(".bin") for path in commit["files"])
    assert commit["files"]["model.safetensors"] == (tmp_path / "model" / "model.safetensors").read_bytes()
    assert hub.authorizations == {f"Bearer {token}"}
    assert token not in result.stdout
    for path in (tmp_path / "model").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_finetune_pushes_the_classifier(checkpoint, glue_dir, tmp_path):
    with LoopbackHub() as hub:
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"}
        _ok(run_recipe(FINETUNE, "--config", GLUE_CONFIG, "--model_name_or_path", str(checkpoint),
                       "--glue_dir", str(glue_dir), "--output_dir", str(tmp_path), "--max_steps", "2",
                       "--push_to_hub", "--hub_model_id", "user/tiny-mrpc", "--hub_token", "hf_x", env=env))
    (commit,) = hub.commits
    assert commit["repo"] == "user/tiny-mrpc"
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(commit["files"])
    assert b"BertForSequenceClassification" in commit["files"]["config.json"]


@pytest.mark.faults
def test_unreachable_hub_fails_before_training(tmp_path):
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HUB_OFFLINE": "0"}
    result = run_recipe(PRETRAIN, "--config", DEBUG, "--output_dir", str(tmp_path / "model"), "--push_to_hub",
                        "--hub_model_id", "user/x", env=env, timeout=120)
    assert result.returncode == 2
    assert "error: --push_to_hub: cannot create or reach user/x" in result.stdout
    assert "Traceback" not in result.stdout
    assert not (tmp_path / "model").exists()


def _run_folder_with_checkpoint_14(folder: Path) -> None:
    from hf_pretrain.training.checkpoints import write_manifest

    checkpoint = folder / "earlier" / "checkpoint-14"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    write_manifest(str(checkpoint))


@pytest.mark.parametrize(
    "make_input, flags, message",
    [
        (lambda d: None, ["--train_file", "{d}/missing.txt"], "missing.txt: no such file or directory"),
        (lambda d: (d / "e.txt").write_text(""), ["--train_file", "{d}/e.txt"], "e.txt: the file is empty"),
        (lambda d: (d / "b.txt").write_bytes(b"ok\n\xff\xfe bad\n"), ["--train_file", "{d}/b.txt"], "b.txt:2: not UTF-8"),
        (lambda d: [(d / f"{i}.txt").write_text(f"Doc {i}.\n") for i in range(3)],
         ["--train_file", "{d}/*.txt", "--validation_split_percentage", "34", "--objective", "mlm"], "too little text for one sequence"),
        (lambda d: (d / "p.yaml").write_text("hidden_size: 64\nnum_layers: 2\n"), ["--config", "{d}/p.yaml"],
         "p.yaml: unknown key 'num_layers'"),
        (lambda d: None, ["--tokenizer_name", "{d}/nope"], "--tokenizer_name {d}/nope: no such directory"),
        (lambda d: None, ["--fp16"], "--fp16 needs a GPU"),
        (lambda d: None, ["--isolate_documents"], "--isolate_documents packs documents for --objective mlm"),
        (lambda d: None, ["--masking_unit", "words"], "--masking_unit must be one of token, whole_word, span"),
        (lambda d: (d / "file").write_text("x"), ["--output_dir", "{d}/file/run"], "--output_dir {d}/file/run: cannot "
         "write there (Not a directory)"),
        (lambda d: None, ["--validation_split_percentage", "0"], "--eval_strategy steps needs a validation split"),
        (lambda d: None, ["--resume_from_checkpoint", "{d}"], "--resume_from_checkpoint {d}: not a training checkpoint"),
        (lambda d: (d / "empty").mkdir(), ["--resume_from_checkpoint", "{d}/empty"],
         "not a training checkpoint (no trainer_state.json); the folder is empty: pass a checkpoint-<step> folder"),
        (_run_folder_with_checkpoint_14, ["--resume_from_checkpoint", "{d}/earlier"],
         "--resume_from_checkpoint {d}/earlier: a run's --output_dir, not one checkpoint: pass --resume_from_checkpoint "
         "{d}/earlier/checkpoint-14 (its newest complete checkpoint)"),
        (lambda d: BertConfig().save_pretrained(d / "BERT"), ["--config_name", "{d}/BERT", "--model_type", "roberta"],
         "--config_name {d}/BERT is a bert config and --model_type says roberta: drop one of them"),
        (lambda d: None, ["--model_type", "gpt2", "--objective", "mlm"],
         "--objective mlm trains a masked-LM model, and transformers has no masked-LM class for gpt2"),
        (lambda d: None, ["--model_type", "t5"], "transformers has no masked-LM class for t5"),
        (lambda d: None, ["--report_to", "wandb"], "--report_to wandb: the wandb package is not installed"),
        (lambda d: (d / "p.yaml").write_text("report_to: 7\n"), ["--config", "{d}/p.yaml"],
         "--report_to 7: not an integration transformers has"),
        (lambda d: (d / "p.yaml").write_text("max_steps: forty\n"), ["--config", "{d}/p.yaml"],
         "{d}/p.yaml: 'max_steps' must be int, not 'forty'"),
        (lambda d: None, ["--seed", "-1"], "--seed must be an integer in [0, 2**32), not -1"),
        (lambda d: None, ["--num_train_epochs", "0", "--max_steps", "-1"], "--num_train_epochs must be positive, not 0"),
        (lambda d: None, ["--objective", "mlm", "--generator_size", "0.5", "--temperature", "0.01"],
         "--generator_size is a flag of --objective electra, and this run trains --objective mlm: drop it"),
        (lambda d: (d / "p.yaml").write_text("objective: mlm\ntemperature: 0.1\n"), ["--config", "{d}/p.yaml"],
         "{d}/p.yaml: --temperature is a flag of --objective contrastive, and this run trains --objective mlm"),
    ],
)
@pytest.mark.faults
def test_bad_input_is_one_line_before_training(tmp_path, make_input, flags, message):
    make_input(tmp_path)
    flags = [f.format(d=tmp_path) for f in flags]
    result = run_recipe(PRETRAIN, "--config", DEBUG, "--output_dir", str(tmp_path / "out"), *flags, timeout=120)
    assert result.returncode == 2, result.stdout[-2000:]
    assert "error: " in result.stdout and message.format(d=tmp_path) in result.stdout
    assert "Traceback" not in result.stdout
    assert not list((tmp_path / "out").glob("checkpoint-*"))


@pytest.mark.faults
def test_tokenizer_that_does_not_match_the_model(checkpoint, tmp_path):
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    big = BertTokenizer(vocab={t: i for i, t in enumerate(specials + [f"w{i}" for i in range(3000)])})
    big.save_pretrained(tmp_path / "tok")
    result = run_recipe(PRETRAIN, *FAST, "--model_name_or_path", str(checkpoint), "--tokenizer_name",
                        str(tmp_path / "tok"), "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "the model's embedding table only 2000" in result.stdout
    assert "Traceback" not in result.stdout


@pytest.mark.faults
def test_glue_bad_labels_one_line(checkpoint, tmp_path):
    from .test_glue import write_task

    write_task(tmp_path, "MRPC", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", ["1\t1\t2\ta\tb", "yes\t1\t2\ta\tb"])
    result = run_recipe(FINETUNE, "--config", GLUE_CONFIG, "--model_name_or_path", str(checkpoint),
                        "--glue_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "MRPC/train.tsv:3: unknown label 'yes'" in result.stdout
    assert "Traceback" not in result.stdout


def test_muon_trains_and_a_resume_continues_its_steps_exactly(tmp_path):
    import torch

    def run(out, steps, *extra):
        return _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--use_muon", "true", "--max_steps", str(steps),
                              "--save_steps", "3", "--eval_strategy", "no", "--logging_steps", "1",
                              "--lr_scheduler_type", "constant", "--output_dir", str(out), *extra))

    def losses(out):
        return {h["step"]: h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"]
                if "loss" in h}

    run(tmp_path / "whole", 6)
    run(tmp_path / "resumed", 3)
    resumed = run(tmp_path / "resumed", 6)
    assert "resuming from" in resumed.stdout and "checkpoint-3" in resumed.stdout
    assert losses(tmp_path / "resumed") == losses(tmp_path / "whole")  # steps 4-6 from the reloaded Muon state
    state = torch.load(tmp_path / "whole" / "checkpoint-3" / "optimizer.pt", weights_only=True)
    assert set(state) == {"muon", "adamw"} and state["muon"]["state"]  # momentum buffers saved
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "6", "--eval_strategy", "no", "--logging_steps", "1",
                   "--lr_scheduler_type", "constant", "--output_dir", str(tmp_path / "adamw")))
    assert losses(tmp_path / "adamw")[6] != losses(tmp_path / "whole")[6]  # Muon changed the steps


def test_span_boundary_objective_exports_a_stock_masked_lm_and_resumes_with_its_network(tmp_path):
    flags = ["--config", DEBUG, "--objective", "mlm_sbo", "--objective_weights", "sbo=0.5", "--save_steps", "4",
             "--eval_strategy", "no", "--logging_steps", "2", "--tokenizer_name", str(GOLDEN / "debug_tokenizer"),
             "--output_dir", str(tmp_path)]
    _ok(run_recipe(PRETRAIN, *flags, "--max_steps", "4"))
    resumed = _ok(run_recipe(PRETRAIN, *flags, "--max_steps", "6"))
    assert "resuming from" in resumed.stdout and "missing keys" not in resumed.stdout  # the SBO network came back
    from safetensors import safe_open

    assert any(k.startswith("sbo_head.") for k in safe_open(str(tmp_path / "checkpoint-4" / "model.safetensors"), "pt").keys())
    assert not any(k.startswith("sbo_head.") for k in safe_open(str(tmp_path / "model.safetensors"), "pt").keys())
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    assert all({"mlm_loss", "sbo_loss", "sbo_accuracy"} <= h.keys() for h in history if "loss" in h)
    card = (tmp_path / "README.md").read_text()
    assert "| loss | mlm + 0.5 x sbo |" in card and "| masking unit | span" in card
    probe = ("import sys; sys.modules['hf_pretrain'] = None\n"
             "from transformers import AutoModelForMaskedLM\n"
             f"m = AutoModelForMaskedLM.from_pretrained({str(tmp_path)!r}); assert type(m).__name__ == 'BertForMaskedLM'\n")
    reload = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/")
    assert reload.returncode == 0 and "were not used" not in reload.stderr, reload.stderr[-2000:]


def test_sentence_order_prediction_trains_through_the_nsp_head(tmp_path):
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm_sop", "--max_steps", "4", "--eval_steps",
                            "4", "--save_strategy", "no", "--tokenizer_name", str(GOLDEN / "debug_tokenizer"),
                            "--output_dir", str(tmp_path)))
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    assert "masked LM + sentence-order prediction" in (tmp_path / "README.md").read_text()
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    assert [h["eval_sop_accuracy"] for h in history if "eval_loss" in h]  # the pair head, scored on SOP labels
    assert all("sop_loss" in h for h in history if "loss" in h)
    refused = run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm_sop", "--model_type", "modernbert",
                         "--output_dir", str(tmp_path / "modern"))
    assert refused.returncode == 2 and "error: --objective mlm_sop needs a next-sentence head, which modernbert has " \
        "none of: use --objective mlm" in refused.stdout
