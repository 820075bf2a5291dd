"""The benchmark scripts run and print one `<figure>: <ratio>x (ours <value>, hf <value> <unit>)` line per figure.

Smoke runs at tiny sizes: the figures themselves are measured by `make bench`, never asserted here.
"""

from __future__ import annotations

import pytest

import json
import os
import re

from .conftest import ROOT, SHARED_DATA, run_recipe

pytestmark = pytest.mark.end_to_end

FIGURE = re.compile(r"^(?P<name>[^:]+): (?P<ratio>\d+\.\d\d)x \(ours (?P<ours>[\d,.]+), hf (?P<hf>[\d,.]+) (?P<unit>.+)\)$")


def _figures(stdout: str) -> dict[str, re.Match]:
    return {m["name"]: m for m in map(FIGURE.match, stdout.splitlines()) if m}


def test_collator_benchmark_prints_its_figures():
    result = run_recipe("benchmarks/bench_collators.py", "--rounds", "1", "--batches", "2", "--batch_size", "32")
    assert result.returncode == 0, result.stdout[-3000:]
    figures = _figures(result.stdout)
    assert len(figures) == 2 and all(f["unit"] == "sequences/s" for f in figures.values())
    for f in figures.values():  # the ratio is ours / hf as printed
        ours, hf = (float(f[k].replace(",", "")) for k in ("ours", "hf"))
        assert abs(float(f["ratio"]) - ours / hf) < 0.01 * ours / hf + 0.01


def test_training_benchmark_prints_throughput_and_memory():
    result = run_recipe("benchmarks/bench_training.py", "--preset", "debug", "--steps", "1", "--batch_size", "4",
                        "--rounds", "1")
    assert result.returncode == 0, result.stdout[-3000:]
    figures = _figures(result.stdout)
    units = sorted(f["unit"] for f in figures.values())
    assert units == ["MB", "tokens/s"], result.stdout[-2000:]


def test_prepare_benchmark_prints_throughput_and_memory():
    result = run_recipe("benchmarks/bench_prepare.py", "--megabytes", "0.5")
    assert result.returncode == 0, result.stdout[-3000:]
    assert sorted(f["unit"] for f in _figures(result.stdout).values()) == ["MB", "MB/s"], result.stdout[-2000:]


def test_prepare_memory_benchmark_prints_its_figures():
    result = run_recipe("benchmarks/bench_prepare_memory.py", "--documents", "1000", "--files", "1")
    assert result.returncode == 0, result.stdout[-3000:]
    figures = _figures(result.stdout)
    assert sorted(figures) == ["deduplication peak memory, 1,000 documents", "deduplication peak memory, 4,000 documents"]
    assert all(f["unit"] == "MB" for f in figures.values())
    scaling = "streaming prepare peak memory, 4x the corpus: "
    measured = any(line.startswith(scaling) for line in result.stdout.splitlines())
    # The corpus figure needs ../shared/data: where it is present the benchmark must measure, not skip.
    assert measured == SHARED_DATA.is_dir(), result.stdout[-2000:]
    assert ("streaming prepare: skipped" in result.stdout) == (not SHARED_DATA.is_dir())


@pytest.fixture(scope="module")
def debug_checkpoint(tmp_path_factory):
    """A one-step debug checkpoint the adaptation and GLUE benchmarks' smoke runs fine-tune (they only read it)."""
    from .conftest import DEBUG

    checkpoint = tmp_path_factory.mktemp("checkpoint")
    pretrained = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, "--max_steps", "1", "--eval_strategy", "no",
                            "--save_strategy", "no", "--tokenizer_name", str(ROOT / "tests" / "golden" / "debug_tokenizer"),
                            "--output_dir", str(checkpoint))
    assert pretrained.returncode == 0, pretrained.stdout[-3000:]
    return checkpoint


def _glue_dir(tmp_path, *tasks: str):
    from .test_glue import FIXTURES, write_task

    for task in tasks:
        header, rows = FIXTURES[task]
        write_task(tmp_path / "glue", task, header, rows * 8)
    return tmp_path / "glue"


def test_adaptation_benchmark_prints_its_table(tmp_path, debug_checkpoint):
    # One method, both initializations: each method is one more fine-tuning run of the same recipe, and every
    # method trains and reloads in tests/test_end_to_end.py.
    result = run_recipe("benchmarks/bench_adaptation.py", "--checkpoint", str(debug_checkpoint), "--glue_dir",
                        str(_glue_dir(tmp_path, "MRPC")), "--seeds", "1", "--methods", "lora", "--output_dir",
                        str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout[-3000:]
    row = re.compile(r"^\| lora \| (pretrained|random init) \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| \d+ \|$")
    rows = [line for line in result.stdout.splitlines() if row.match(line)]
    assert len(rows) == 2 and (tmp_path / "out" / "results.md").read_text().count("\n| ") == 3  # header and 2 rows


def test_glue_benchmark_prints_a_column_per_initialization_and_the_average(tmp_path, debug_checkpoint):
    """One task (the regression, whose score is two correlations) and the probe: every cell is the same recipe,
    which tests/test_glue.py and tests/test_end_to_end.py test for each method and task."""
    import json

    result = run_recipe("benchmarks/bench_glue.py", "--checkpoint", str(debug_checkpoint), "--glue_dir",
                        str(_glue_dir(tmp_path, "STS-B")), "--tasks", "stsb", "--methods", "probe", "--seeds", "1",
                        "--probe_learning_rates", "1e-3",  # one rate: the grid is the next tests'
                        "--task_overrides", '{"stsb": {"num_train_epochs": 1}}', "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout[-3000:]
    name = debug_checkpoint.name
    assert f"| task (dev, 1 seeds) | {name} | random init | BERT-Mini (test, Turc et al.) |" in result.stdout
    number = r"(-?[\d.]+|nan)"  # a tiny fixture's STS-B prediction can be constant: its correlation is nan
    cell = rf"{number} ± {number}"
    assert re.search(rf"^\| stsb \| {cell} \| {cell} \| 75\.4 \|$", result.stdout, re.M), result.stdout[-2000:]
    assert re.search(rf"^\| average \| \*\*{number}\*\* \| \*\*{number}\*\* \| 75\.4 \|$", result.stdout, re.M)
    assert re.search(rf"^{name} over random init: stsb [+-]{number}; average [+-]{number}$", result.stdout, re.M)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert sorted(results["probe"]) == sorted([name, "random init"])
    assert sorted(results["probe"]["random init"]) == ["stsb"]
    # Each cell is the fine-tuning recipe from random init (--from_scratch) or not, with --task_overrides passed on.
    commands = {cell.parent.parent.name: json.loads(cell.read_text())["command"]
                for cell in (tmp_path / "out").rglob("cell.json")}
    assert ("--from_scratch" in commands["random-init"], "--from_scratch" in commands[name]) == (True, False)
    assert all(c[c.index("--task_overrides") + 1] == '{"stsb": {"num_train_epochs": 1}}' for c in commands.values())

    # Run again: every cell was finished by the same command, so it is read back, not trained again; the GLUE
    # folder and the output spelled relative to the project instead of absolute are the same command.
    cells = sorted((tmp_path / "out").rglob("cell.json"))
    before = [(cell.stat().st_mtime_ns, (cell.parent / "glue_results.json").stat().st_mtime_ns) for cell in cells]
    arguments = [os.path.relpath(a, ROOT) if a.startswith(str(tmp_path)) else a for a in result.args[2:]]
    assert arguments != result.args[2:]
    again = run_recipe("benchmarks/bench_glue.py", *arguments)
    assert again.returncode == 0, again.stdout[-3000:]
    assert len(cells) == 2 and before == [(cell.stat().st_mtime_ns, (cell.parent / "glue_results.json").stat().st_mtime_ns)
                                          for cell in cells]
    table = result.stdout[result.stdout.index("| task"):]
    assert again.stdout[again.stdout.index("| task"):] == table


def test_glue_benchmark_finishes_every_other_cell_when_one_fails(tmp_path, debug_checkpoint):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    arguments = ["--checkpoint", str(broken), str(debug_checkpoint), "--random_from", str(debug_checkpoint),
                 "--glue_dir", str(_glue_dir(tmp_path, "STS-B")),
                 "--tasks", "stsb", "--methods", "probe", "--seeds", "1", "--probe_learning_rates", "1e-3",
                 "--task_overrides", '{"stsb": {"num_train_epochs": 1}}', "--output_dir", str(tmp_path / "out")]
    result = run_recipe("benchmarks/bench_glue.py", *arguments)
    assert result.returncode == 1
    assert "probe / broken / stsb / lr 1e-3: FAILED, " in result.stdout  # the first cell in the order
    assert result.stdout.rstrip().endswith("1 of 3 cells failed (their output is above); the others are done: the same "
                                           "command again reads them back and trains only the failed ones")
    # The two cells after it, queued behind it, finished and were recorded for the rerun.
    done = sorted(cell.parent.parent.name for cell in (tmp_path / "out").rglob("cell.json"))
    assert done == sorted([debug_checkpoint.name, "random-init"]), result.stdout[-2000:]
    assert "| task" not in result.stdout  # no table from a partial grid


def _quality_side(losses: list[float], minutes: list[float]) -> dict:
    return {"curve": [{"minutes": m, "loss": loss, "accuracy": 0.1} for m, loss in zip(minutes, losses)],
            "tokens_per_second": 1000.0, "precision": "fp32", "mfu": 0.4, "mfu_bf16_peak": 0.8,
            "matmul_peak_tflops": 0.15, "matmul_peaks_tflops": {"bf16": 0.075, "fp32": 0.15}, "parameters": 10}

def test_electra_sampling_benchmark_prints_a_ratio_per_masking_rate():
    result = run_recipe("benchmarks/bench_electra_sampling.py", "--rates", "0.15", "0.3", "--blocks", "1", "--steps",
                        "2", "--batch_size", "2")
    assert result.returncode == 0, result.stdout[-3000:]
    lines = re.findall(r"^ELECTRA step at (\d+)% masking, inverse CDF against Gumbel-max: [\d.]+x \([\d,]+ against "
                       r"[\d,]+ tokens/s; [\d.]+ s and [\d.]+ s a step\)$", result.stdout, re.M)
    assert lines == ["15", "30"], result.stdout[-2000:]


def test_fused_loss_benchmark_prints_the_step_and_the_head_against_transformers_sparse_prediction():
    result = run_recipe("benchmarks/bench_fused_loss.py", "--blocks", "2", "--steps", "1", "--batch_size", "2",
                        "--vocab_size", "512")
    assert result.returncode == 0, result.stdout[-3000:]
    figures = _figures(result.stdout)
    assert sorted(f["unit"] for f in figures.values()) == ["ms", "tokens/s"], result.stdout[-2000:]
    for f in figures.values():  # a rate's ratio is ours / hf, a time's hf / ours: above 1 when ours is faster
        ours, hf = (float(f[k].replace(",", "")) for k in ("ours", "hf"))
        expected = ours / hf if f["unit"] == "tokens/s" else hf / ours
        assert abs(float(f["ratio"]) - expected) < 0.06 * expected + 0.01  # the tiny head's times print rounded


def test_glue_learning_rate_grid_reports_each_cells_best_rate_on_dev(tmp_path, monkeypatch):
    """With several rates, every (method, column, task) keeps the rate with the best mean score, in its own folder
    beside the method's usual rate's, and the table names the rate it kept."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_glue

    def cell(label, task, rate, mean, method="full"):
        metric = {"sst2": "validation_accuracy", "stsb": "validation_pearson"}[task]
        summary = {metric: {"mean": mean, "std": 0.01}}
        if task == "stsb":
            summary["validation_spearmanr"] = {"mean": mean, "std": 0.01}
        return (label, "ckpt", label == "random init", method, task, rate), {"summary": summary, "seconds": 1.0}

    finished = [cell("ours", "sst2", "1e-4", 0.70), cell("ours", "sst2", "3e-5", 0.75),
                cell("random init", "sst2", "1e-4", 0.74), cell("random init", "sst2", "3e-5", 0.60),
                cell("ours", "stsb", "1e-4", 0.50), cell("random init", "stsb", "1e-4", 0.10),
                # The probe's grid is chosen on its own: its best rate here is not full fine-tuning's.
                cell("ours", "sst2", "1e-3", 0.55, "probe"), cell("ours", "sst2", "1e-2", 0.60, "probe")]
    columns = bench_glue.best_of_rates(finished)
    assert {label: {t: c["learning_rate"] for t, c in tasks.items()} for label, tasks in columns["full"].items()} == {
        "ours": {"sst2": "3e-5", "stsb": "1e-4"}, "random init": {"sst2": "1e-4", "stsb": "1e-4"}}
    assert columns["probe"]["ours"]["sst2"]["learning_rate"] == "1e-2"
    text = bench_glue.table(columns["full"], ["sst2", "stsb"], seeds=3, show_rates=True)
    assert "| sst2 | 75.0 ± 1.0 (3e-5) | 74.0 ± 1.0 (1e-4) | 85.9 |" in text
    assert "ours over random init: sst2 +1.0, stsb +40.0; average +20.5" in text
    # The usual rate keeps the folder it always had (earlier tables are read back); another gets its own.
    assert bench_glue.cell_folder(tmp_path, "full", "random init", "sst2", "1e-4") == tmp_path / "full/random-init/sst2"
    assert bench_glue.cell_folder(tmp_path, "full", "ours", "sst2", "3e-5") == tmp_path / "full/ours/sst2-lr3e-5"
    assert bench_glue.cell_folder(tmp_path, "probe", "ours", "sst2", "1e-3") == tmp_path / "probe/ours/sst2"
    assert bench_glue.cell_folder(tmp_path, "probe", "ours", "sst2", "1e-2") == tmp_path / "probe/ours/sst2-lr1e-2"



def test_quality_report_extrapolates_plain_hf_within_ten_times_its_time_and_bounds_it_beyond(tmp_path, monkeypatch):
    import json

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_quality

    minutes = [5.0, 10.0, 20.0, 30.0]
    ours = _quality_side([7.0, 6.5, 6.0, 5.5], minutes)
    # Plain HF falls 0.5 per doubling from 6.5 at 30 minutes: 5.5 two doublings later, at 120 minutes (4x ours).
    steep = {"ours": ours, "hf": _quality_side([7.5, 7.3, 7.0, 6.5], [5.0, 10.0, 15.0, 30.0])}
    bench_quality.report(tmp_path, steep, n_seeds=1)
    figures = json.loads((tmp_path / "results.json").read_text())["time_to_loss"]
    assert abs(figures["hf_minutes"] - 120.0) < 1e-6 and abs(figures["ratio"] - 4.0) < 1e-9
    assert "~120 minutes (extrapolated), 4.0x ours" in (tmp_path / "results.md").read_text()
    assert "warning" not in (tmp_path / "results.md").read_text()

    # A plain HF side whose step-keyed schedule ran out before the budget (its probe saw slow steps) is flagged.
    short = {"ours": ours, "hf": _quality_side([7.5, 7.3, 7.0, 6.5], [5.0, 10.0, 15.0, 22.5])}
    bench_quality.report(tmp_path, short, n_seeds=1)
    assert "warning: plain HF's schedule ended at 22.5 minutes, before the budget" in (
        tmp_path / "results.md").read_text()

    # Nearly flat (0.02 per doubling): 1.52 more loss would take 76 doublings; reported as a bound past 10x instead.
    flat = {"ours": ours, "hf": _quality_side([7.1, 7.06, 7.04, 7.02], [5.0, 10.0, 15.0, 30.0])}
    bench_quality.report(tmp_path, flat, n_seeds=1)
    figures = json.loads((tmp_path / "results.json").read_text())["time_to_loss"]
    assert figures["ratio"] is None and figures["hf_minutes"] is None and abs(figures["ratio_above"] - 10.0) < 1e-9
    assert "not within 10x its measured time on its last slope (-0.020 loss per doubling" in (
        tmp_path / "results.md").read_text()

    # Ours under plain HF's final loss at its first evaluation: the crossing is earlier, the ratio a lower bound.
    early = {"ours": _quality_side([6.4, 6.0, 5.8, 5.5], minutes), "hf": steep["hf"]}
    bench_quality.report(tmp_path, early, n_seeds=1)
    assert json.loads((tmp_path / "results.json").read_text())["time_to_loss"]["ours_under_it_at_first_evaluation"]
    assert ("ours already under it at its first evaluation (5 minutes), so at least 6.0x faster"
            in (tmp_path / "results.md").read_text())
    assert "ours 5.0 minutes (interpolated)" not in (tmp_path / "results.md").read_text()

    # The GLUE table (bench_glue.py's results.md) closes the report, after the throughput lines.
    bench_quality.report(tmp_path, {**steep, "glue": "Full fine-tuning (lr 1e-4):\n\n| task | a |\n"}, n_seeds=1)
    report = (tmp_path / "results.md").read_text()
    assert report.endswith("tokens/s: ours 1.00x plain HF's\n\nFull fine-tuning (lr 1e-4):\n\n| task | a |\n"), report[-300:]

    # MFU against the second peak, that of the side's own layer shapes, where the side measured it.
    shaped = {**steep, "ours": {**ours, "model_shape_peak_tflops": 0.08, "mfu_model_shape_peak": 0.75}}
    bench_quality.report(tmp_path, shaped, n_seeds=1)
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert lines[lines.index("tokens/s: ours 1.00x plain HF's") - 2].endswith(
        "MFU 40 % of this core's fp32 matmul peak (150 GFLOP/s), 80 % of its bf16 peak (75 GFLOP/s), 75 % of its own "
        "layers' matmul shapes' peak (80 GFLOP/s), 10 parameters")


def test_plain_hf_side_of_the_same_architecture_is_the_presets_shape_as_run_mlm_builds_it(tokenizer, monkeypatch):
    """``--hf_model_type modernbert``: the preset's width, depth, heads and MLP on transformers' ModernBERT with its
    own defaults otherwise (no sparse prediction, no unpadding choices of ours), and it trains on our tokenizer's ids;
    the default stays BERT with a 4x MLP."""
    import torch
    from transformers import AutoModelForMaskedLM

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_quality

    preset = ROOT / "recipes" / "configs" / "budget_match.yaml"
    same = AutoModelForMaskedLM.from_config(bench_quality.plain_hf_config(tokenizer, preset, "modernbert"))
    bert = AutoModelForMaskedLM.from_config(bench_quality.plain_hf_config(tokenizer, preset, "bert"))
    assert (type(same).__name__, type(bert).__name__) == ("ModernBertForMaskedLM", "BertForMaskedLM")
    shape = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    assert [getattr(same.config, k) for k in shape] == [256, 4, 4, 384]
    assert [getattr(bert.config, k) for k in shape] == [256, 4, 4, 1024]
    assert not same.config.sparse_prediction and same.config.vocab_size == len(tokenizer)
    ids = torch.tensor([tokenizer("the river flows")["input_ids"]])
    assert same(input_ids=ids, labels=ids).loss.isfinite()


def test_linear_shapes_are_each_layer_call_with_the_rows_it_multiplies(monkeypatch):
    """The model-shape peak's shapes: every linear layer a forward calls, rows = the tokens it sees, so a sparse
    prediction head counts only the masked ones; their rate is the square matmul's where the shape is square."""
    import torch
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from hf_pretrain.runtime.precision import matmul_rate

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from measure import gemm_rate, linear_shapes

    config = ModernBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=48, sparse_prediction=True, pad_token_id=0, bos_token_id=1,
                              eos_token_id=2, cls_token_id=1, sep_token_id=2)
    model = ModernBertForMaskedLM(config)
    input_ids = torch.randint(3, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    labels = torch.full_like(input_ids, -100)
    labels[0, 1], labels[0, 5], labels[1, 2] = 7, 8, 9  # three masked tokens
    shapes = linear_shapes(model, lambda: model(input_ids=input_ids, labels=labels))
    # Per layer: the fused q/k/v projection, the attention output, GeGLU's input (2 x 48 wide) and output projections.
    layer = [(16, 32, 96), (16, 32, 32), (16, 32, 96), (16, 48, 32)]
    assert shapes == layer * 2 + [(3, 32, 32), (3, 32, 100)]  # the head: its dense layer and the decoder
    assert not any(h for m in model.modules() for h in m._forward_hooks.values())  # the hooks are removed

    square = gemm_rate([(256, 256, 256)], torch.float32, seconds=0.2)
    assert 0.3 < square / matmul_rate(torch.float32, seconds=0.2, n=256) < 3.0


def test_clm_report_puts_the_sides_at_each_mark_and_the_cost_of_isolation(tmp_path, monkeypatch):
    import json

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_clm

    def side(perplexities, minutes, scheduled=None):
        curve = [{"minutes": m, "step": 10 * (i + 1), "tokens": 40960 * (i + 1), "perplexity": p}
                 for i, (m, p) in enumerate(zip(minutes, perplexities))]
        return {"curve": curve, "tokens_per_second": 1500.0, "batch_size": 8 if scheduled is None else 32,
                "learning_rate": 3e-3 if scheduled is None else 1e-3, "scheduled_steps": scheduled,
                "parameters": 100, "precision": "bf16", "config": "clm_budget.yaml"}

    results = {"ours": side([900.0, 500.0], [4, 7.9]), "hf": side([1000.0, 700.0], [4, 8], scheduled=233),
               "isolation": {"false": 1600.0, "true": 1200.0}}
    bench_clm.report(tmp_path, results)
    text = (tmp_path / "results.md").read_text()
    assert "| 4 | 900.0 | 1000.0 | 1.11x |" in text and "| 7.9 / 8 | 500.0 | 700.0 | 1.40x |" in text
    assert "plain HF: 20 steps of batch 32 at peak lr 0.001, linear decay over 233 scheduled steps" in text
    assert "document isolation: 1,200 tokens/s with it, 1,600 without (0.75x)" in text
    assert json.loads((tmp_path / "results.json").read_text()) == results


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data (Wikipedia and GLUE MRPC)")
def test_semantic_dedup_benchmark_prints_its_table_and_prepare_agrees_with_it(tmp_path, debug_checkpoint):
    result = run_recipe("benchmarks/bench_semantic_dedup.py", "--semantic_model", str(debug_checkpoint),
                        "--wikipedia_documents", "20", "--max_pairs", "60", "--skip_memory",
                        "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "%" in line]
    assert len(rows) == 1 + 2 * 7  # MinHash, then raw and whitened at seven thresholds
    assert "| MinHash (prepare's default" in rows[0] and "whitened" in rows[-1]
    assert "(the same as the table's whitened row at 0.9)" in result.stdout  # prepare itself removes what the table says
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["corpus"]["wikipedia"] == 20 and results["corpus"]["pair_count"] == 60


def test_prepare_tasks_benchmark_prints_its_figures():
    result = run_recipe("benchmarks/bench_prepare_tasks.py", "--files", "1", "--memory_files", "1", "--repeats", "1")
    assert result.returncode == 0, result.stdout[-3000:]
    figures = _figures(result.stdout)
    if SHARED_DATA.is_dir():  # where the corpus is present the benchmark must measure, not skip
        assert sorted(figures) == ["prepare documents/s, 1 task(s)", "prepare documents/s, 2 task(s)",
                                   "prepare documents/s, one process --num_proc 2"], result.stdout[-2000:]
        assert all(f["unit"].startswith("documents/s") for f in figures.values())
        for stage in ("clean", "finish"):
            assert f"peak memory per {stage} task, 4x the corpus: " in result.stdout
    else:
        assert "prepare in tasks: skipped" in result.stdout
    rows = [line.split(" | ")[0].strip("| ") for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["ours", "datatrove, 1 task(s)", "datatrove, 2 task(s)"], result.stdout[-2000:]
    assert "datatrove's kept documents the same with 1 and 2 tasks: " in result.stdout
