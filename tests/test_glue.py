"""Layer 2: GLUE readers for each task's distributed format, their errors, and the offline metrics."""

from __future__ import annotations

import numpy as np
import pytest

from hf_pretrain.errors import HfPretrainError
from hf_pretrain.glue.finetune import summarize_seeds
from hf_pretrain.glue.tasks import GLUE_TASKS, glue_metrics, load_glue

from .conftest import SHARED_DATA, requires_shared_data

pytestmark = pytest.mark.component

# Two rows per task, in each file's real layout (columns and header as GLUE distributes them).
FIXTURES = {
    "CoLA": ("", ["gj04\t1\t\tOur friends won't buy this analysis.", "gj04\t0\t*\tThey drank the pub."]),
    "SST-2": ("sentence\tlabel", ["a gripping film \t1", "dull and long \t0"]),
    "MRPC": ("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
             ["1\t1\t2\tHe said yes .\tHe agreed .", "0\t3\t4\tIt rained .\tPrices fell ."]),
    "STS-B": ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
              ["0\tmain\tf\t2012\t1\tnone\tnone\tA plane takes off.\tAn air plane is taking off.\t5.000",
               "1\tmain\tf\t2012\t4\tnone\tnone\tA man plays.\tA dog runs.\t0.500"]),
    "QQP": ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            ["1\t1\t2\tHow do I learn?\tHow can I learn?\t1", "2\t3\t4\tWhat is x?\tWho is y?\t0"]),
    "MNLI": ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
             "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label",
             ["0\t1\t1n\tgov\t(x)\t(y)\t(X)\t(Y)\tThe cat sat.\tA cat sat.\tentailment\tentailment",
              "1\t2\t2c\tgov\t(x)\t(y)\t(X)\t(Y)\tIt is \"hot\".\tIt is cold.\tcontradiction\tcontradiction"]),
    "QNLI": ("index\tquestion\tsentence\tlabel", ["0\tWho?\tHe did.\tentailment", "1\tWhen?\tBlue.\tnot_entailment"]),
    "RTE": ("index\tsentence1\tsentence2\tlabel", ["0\tA b.\tA.\tentailment", "1\tC d.\tE.\tnot_entailment"]),
    "WNLI": ("index\tsentence1\tsentence2\tlabel", ["0\tI saw it.\tIt was seen.\t1", "1\tA.\tB.\t0"]),
}
EXPECTED_LABELS = {"CoLA": [1, 0], "SST-2": [1, 0], "MRPC": [1, 0], "STS-B": [5.0, 0.5], "QQP": [1, 0],
                   "MNLI": [0, 2], "QNLI": [0, 1], "RTE": [0, 1], "WNLI": [1, 0]}


def write_task(root, folder, header, rows, files=("train.tsv", "dev.tsv")):
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name in files:
        (root / folder / name).write_text(((header + "\n") if header else "") + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def glue_dir(tmp_path):
    for folder, (header, rows) in FIXTURES.items():
        files = ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv") if folder == "MNLI" else ("train.tsv", "dev.tsv")
        write_task(tmp_path, folder, header, rows, files)
    return tmp_path


@pytest.mark.parametrize("name", list(GLUE_TASKS))
def test_every_task_reads_its_distributed_format(glue_dir, name):
    task = GLUE_TASKS[name]
    data = load_glue(task, str(glue_dir))
    expected_splits = {"train", *(s for s, _ in task.eval_files)}
    assert set(data) == expected_splits
    train = data["train"]
    assert train["label"] == EXPECTED_LABELS[task.folder]
    n_texts = len(task.text_columns)
    assert [c for c in train.column_names if c.startswith("sentence")] == [f"sentence{i + 1}" for i in range(n_texts)]
    assert train[0]["sentence1"] and "\t" not in train[0]["sentence1"]


def test_cola_has_no_header_and_quotes_are_literal(glue_dir):
    data = load_glue(GLUE_TASKS["cola"], str(glue_dir))
    assert data["train"]["sentence1"][0] == "Our friends won't buy this analysis."
    mnli = load_glue(GLUE_TASKS["mnli"], str(glue_dir))
    assert mnli["validation_matched"]["sentence1"][1] == 'It is "hot".'


@pytest.mark.faults
def test_missing_column(tmp_path):
    write_task(tmp_path, "RTE", "index\tsentence1\tlabel", ["0\ta\tentailment"])
    with pytest.raises(HfPretrainError, match=r"RTE/train\.tsv:1: missing column\(s\) 'sentence2'"):
        load_glue(GLUE_TASKS["rte"], str(tmp_path))


@pytest.mark.faults
def test_unknown_label_names_the_line(tmp_path):
    write_task(tmp_path, "RTE", "index\tsentence1\tsentence2\tlabel", ["0\ta\tb\tentailment", "1\ta\tb\tmaybe"])
    with pytest.raises(HfPretrainError, match=r"train\.tsv:3: unknown label 'maybe' for RTE"):
        load_glue(GLUE_TASKS["rte"], str(tmp_path))


@pytest.mark.faults
def test_too_few_fields_names_the_line(tmp_path):
    write_task(tmp_path, "SST-2", "sentence\tlabel", ["good\t1", "no label here"])
    with pytest.raises(HfPretrainError, match=r"train\.tsv:3: wrong number of fields \(1 tab-separated, expected 2"):
        load_glue(GLUE_TASKS["sst2"], str(tmp_path))


@pytest.mark.faults
def test_too_many_fields_names_the_line(tmp_path):
    write_task(tmp_path, "SST-2", "sentence\tlabel", ["good\t1", "a stray\ttab\t0"])
    with pytest.raises(HfPretrainError, match=r"train\.tsv:3: wrong number of fields \(3 tab-separated, expected 2"):
        load_glue(GLUE_TASKS["sst2"], str(tmp_path))


@pytest.mark.parametrize("score", ["high", "nan", "inf"])
@pytest.mark.faults
def test_non_numeric_stsb_score(tmp_path, score):
    """'nan' and 'inf' parse as floats and would give a NaN Pearson: they are refused like any non-number."""
    header, rows = FIXTURES["STS-B"]
    write_task(tmp_path, "STS-B", header, [rows[0].replace("5.000", score)])
    with pytest.raises(HfPretrainError, match=rf"train\.tsv:2: label not a number \('{score}'\)"):
        load_glue(GLUE_TASKS["stsb"], str(tmp_path))


@pytest.mark.faults
def test_missing_task_folder(tmp_path):
    with pytest.raises(HfPretrainError, match="no MRPC/ folder"):
        load_glue(GLUE_TASKS["mrpc"], str(tmp_path))


@pytest.mark.faults
def test_hub_fails_early_offline():
    with pytest.raises(HfPretrainError, match="pass --glue_dir"):
        load_glue(GLUE_TASKS["mrpc"], None)


def test_metrics_exact_values():
    labels = np.array([1, 1, 0, 0, 1])
    logits = np.array([[0, 1], [1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)  # predicts 1, 0, 0, 1, 1
    mrpc = glue_metrics(GLUE_TASKS["mrpc"], logits, labels)
    assert mrpc == pytest.approx({"accuracy": 0.6, "f1": 2 / 3})
    cola = glue_metrics(GLUE_TASKS["cola"], logits, labels)
    assert cola == pytest.approx({"matthews_correlation": 1 / 6})
    stsb = glue_metrics(GLUE_TASKS["stsb"], np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 4.0]))
    assert stsb["spearmanr"] == pytest.approx(1.0) and stsb["pearson"] == pytest.approx(0.9819805, rel=1e-6)
    assert glue_metrics(GLUE_TASKS["rte"], logits, labels) == {"accuracy": pytest.approx(0.6)}


def test_a_constant_regression_scores_zero_and_an_undefined_seed_does_not_break_the_summary():
    # A linear probe that predicts one score for every pair (it happened to a random encoder's STS-B probe): scipy
    # says nan, with which the mean over seeds died inside statistics.stdev; 0, as for CoLA's constant prediction.
    labels = np.array([1.0, 2.0, 4.0])
    assert glue_metrics(GLUE_TASKS["stsb"], np.full((3, 1), 2.7), labels) == {"pearson": 0.0, "spearmanr": 0.0}
    cola = glue_metrics(GLUE_TASKS["cola"], np.array([[0.0, 1.0]] * 4), np.array([1, 0, 1, 0]))
    assert cola == {"matthews_correlation": 0.0}
    assert summarize_seeds([{"pearson": 0.5}, {"pearson": 0.7}, {"pearson": 0.0}]) == {
        "pearson": {"mean": pytest.approx(0.4), "std": pytest.approx(0.3605551, rel=1e-6)}}
    nan = summarize_seeds([{"pearson": 0.5, "spearmanr": 0.4}, {"pearson": float("nan"), "spearmanr": 0.6}])
    assert np.isnan(nan["pearson"]["mean"]) and np.isnan(nan["pearson"]["std"])
    assert nan["spearmanr"] == {"mean": pytest.approx(0.5), "std": pytest.approx(0.1414214, rel=1e-6)}


def _summary(**means):
    return {f"validation_{metric}": {"mean": value, "std": 0.0} for metric, value in means.items()}


def test_glue_score_as_papers_compute_it():
    from hf_pretrain.glue.score import glue_score

    summaries = {
        "cola": _summary(matthews_correlation=0.30),
        "sst2": _summary(accuracy=0.90),
        "mrpc": _summary(accuracy=0.70, f1=0.80),  # mean of F1 and accuracy: 75
        "stsb": _summary(pearson=0.60, spearmanr=0.50),  # mean of Pearson and Spearman: 55
        "qqp": _summary(accuracy=0.85, f1=0.75),  # 80
        "mnli": _summary(matched_accuracy=0.70, mismatched_accuracy=0.72),  # 71
        "qnli": _summary(accuracy=0.80),
        "rte": _summary(accuracy=0.60),
        "wnli": _summary(accuracy=0.10),  # reported, left out of the average
    }
    score = glue_score(summaries)
    assert score["task_scores"] == pytest.approx(
        {"cola": 30, "sst2": 90, "mrpc": 75, "stsb": 55, "qqp": 80, "mnli": 71, "qnli": 80, "rte": 60, "wnli": 10})
    assert score["average"] == pytest.approx((30 + 90 + 75 + 55 + 80 + 71 + 80 + 60) / 8)
    assert score["left_out"] == ["wnli"] and "wnli" not in score["averaged_over"]
    partial = glue_score({"mrpc": summaries["mrpc"], "rte": summaries["rte"]})
    assert partial["average"] == pytest.approx(67.5) and partial["averaged_over"] == ["mrpc", "rte"]


@pytest.mark.faults
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--task_name", "mrpc,sts"], "--task_name must be 'all' or among cola, sst2"),
        (["--task_overrides", "{rte: 1}"], "--task_overrides: not JSON"),
        (["--task_overrides", '{"rte": 10}'], "--task_overrides must map task names to mappings"),
        (["--task_overrides", '{"rtee": {"num_train_epochs": 10}}'], "--task_overrides: 'rtee' is not a GLUE task"),
        (["--max_seq_length", "2"], r"--max_seq_length must be at least 8, not 2: a pair takes 3 special tokens"),
        (["--seeds", "1", "-2"], r"--seeds must be an integer in \[0, 2\*\*32\), not -2"),
    ],
)
def test_task_names_and_overrides_are_checked(flags, message):
    from transformers import TrainingArguments

    from hf_pretrain.config import parse_config
    from hf_pretrain.glue.arguments import GlueArguments

    with pytest.raises(HfPretrainError, match=message):
        parse_config((GlueArguments, TrainingArguments), ["--model_name_or_path", "m", "--output_dir", "o", *flags])
    glue, _ = parse_config((GlueArguments, TrainingArguments),
                           ["--model_name_or_path", "m", "--output_dir", "o", "--task_name", "RTE, mrpc,rte"])
    assert glue.task_names == ["rte", "mrpc"] and glue.several_tasks


@pytest.mark.faults
def test_the_sequence_length_is_capped_at_the_checkpoint_s_positions(tmp_path, caplog):
    """RoBERTa's positions start at pad_token_id + 1: a 128-position checkpoint takes 126 tokens, and GLUE's 128
    would index past its table inside the first forward pass (as 512 would for any 128-position model)."""
    from transformers import BertConfig, RobertaConfig

    from hf_pretrain.glue.finetune import usable_length

    RobertaConfig(max_position_embeddings=128, pad_token_id=1).save_pretrained(tmp_path / "roberta")
    BertConfig(max_position_embeddings=128).save_pretrained(tmp_path / "bert")
    with caplog.at_level("WARNING"):
        assert usable_length(str(tmp_path / "roberta"), 128) == 126
    assert f"--max_seq_length 128 is longer than {tmp_path / 'roberta'}'s position embeddings take (126 tokens)" \
        in caplog.text
    assert usable_length(str(tmp_path / "bert"), 512) == 128
    assert usable_length(str(tmp_path / "bert"), 100) == 100


@requires_shared_data
def test_real_mrpc():
    data = load_glue(GLUE_TASKS["mrpc"], str(SHARED_DATA / "glue"))
    assert len(data["train"]) == 3667 and len(data["validation"]) == 408
    assert 0.6 < np.mean(data["validation"]["label"]) < 0.75  # MRPC dev is about 68 % paraphrases
