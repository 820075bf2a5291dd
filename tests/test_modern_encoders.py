"""End to end: RoBERTa and ModernBERT pretrained from scratch by the one recipe, reloaded by plain transformers in a
process that cannot import hf_pretrain, fine-tuned on GLUE, continued (domain-adaptive pretraining), compiled."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from safetensors import safe_open

from .conftest import DEBUG, ROOT, run_recipe

pytestmark = pytest.mark.end_to_end

PRETRAIN = "recipes/pretrain_bert.py"
FAST = ["--config", DEBUG, "--objective", "mlm", "--max_steps", "6", "--eval_steps", "3", "--save_steps", "3",
        "--logging_steps", "3", "--isolate_documents", "--masking_unit", "whole_word", "--mlm_probability", "0.3",
        "--bf16"]
STOCK = {"roberta": ("RobertaForMaskedLM", "<mask>"), "modernbert": ("ModernBertForMaskedLM", "[MASK]")}


def _ok(result):
    assert result.returncode == 0, result.stdout[-4000:]
    return result


_PRETRAINED: dict[str, Path] = {}


def _pretrain(model_type: str, tmp_path_factory) -> Path:
    """One pretrained checkpoint of each type for the whole file (the tests only read it)."""
    if model_type not in _PRETRAINED:
        out = tmp_path_factory.mktemp(model_type)
        _ok(run_recipe(PRETRAIN, *FAST, "--model_type", model_type, "--output_dir", str(out)))
        _PRETRAINED[model_type] = out
    return _PRETRAINED[model_type]


@pytest.fixture(scope="module", params=sorted(STOCK))
def pretrained(request, tmp_path_factory) -> tuple[str, Path]:
    return request.param, _pretrain(request.param, tmp_path_factory)


def test_the_checkpoint_is_the_stock_class_and_loads_without_hf_pretrain(pretrained):
    model_type, out = pretrained
    stock, mask = STOCK[model_type]
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == model_type and config["architectures"] == [stock]
    probe = (
        "import sys; sys.modules['hf_pretrain'] = None\n"
        "from transformers import AutoModelForMaskedLM, AutoTokenizer\n"
        f"d = {str(out)!r}\n"
        "tok = AutoTokenizer.from_pretrained(d)\n"
        "model = AutoModelForMaskedLM.from_pretrained(d)\n"
        f"out = model(**tok('a {mask} sentence', return_tensors='pt'))\n"
        "print('LOADED', type(model).__name__, tuple(out.logits.shape), tok.mask_token)\n"
    )
    result = _ok(run_recipe("-c", probe))
    assert f"LOADED {stock} (1, " in result.stdout and f", 2000) {mask}" in result.stdout
    card = (out / "README.md").read_text()
    assert "byte-level BPE trained on the corpus" in card and f"tags:\n- hf-pretrain\n- {model_type}" in card
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [h["eval_mlm_accuracy"] for h in history if "eval_loss" in h]


def test_the_checkpoint_fine_tunes_on_glue(pretrained, tmp_path):
    from .test_glue import FIXTURES, write_task

    model_type, out = pretrained
    header, rows = FIXTURES["MRPC"]
    write_task(tmp_path / "glue", "MRPC", header, rows * 4)
    _ok(run_recipe("recipes/finetune_glue.py", "--config", str(ROOT / "recipes" / "configs" / "glue.yaml"),
                   "--model_name_or_path", str(out), "--task_name", "mrpc", "--glue_dir", str(tmp_path / "glue"),
                   "--output_dir", str(tmp_path / "mrpc"), "--max_steps", "2"))
    classifier = json.loads((tmp_path / "mrpc" / "seed_1" / "config.json").read_text())
    assert classifier["architectures"][0].endswith("ForSequenceClassification")
    assert classifier["model_type"] == model_type


def test_continued_pretraining_from_a_saved_modernbert(tmp_path_factory, tmp_path):
    source = _pretrain("modernbert", tmp_path_factory)
    _ok(run_recipe(PRETRAIN, *FAST, "--model_name_or_path", str(source), "--config_overrides",
                   "attention_dropout=0.1", "--output_dir", str(tmp_path)))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForMaskedLM"] and config["attention_dropout"] == 0.1
    assert (tmp_path / "tokenizer.json").read_text() == (source / "tokenizer.json").read_text()


@pytest.mark.faults
def test_modern_objective_flags_refused_in_one_line(tmp_path):
    result = run_recipe(PRETRAIN, "--config", DEBUG, "--model_type", "roberta", "--output_dir", str(tmp_path))
    assert result.returncode == 2 and result.stdout.strip().splitlines()[-1] == (
        "error: --objective mlm_nsp needs a next-sentence head, which roberta has none of: use --objective mlm"
    )
    result = run_recipe(PRETRAIN, *FAST, "--model_type", "modernbert", "--config_overrides", "hidden=64",
                        "--output_dir", str(tmp_path))
    assert result.returncode == 2 and "error: --config_overrides: 'hidden' is not a field of the modernbert" in \
        result.stdout and "Traceback" not in result.stdout


def test_token_matching_pretrains_a_modernbert_that_pools_its_tokens(tmp_path):
    out = tmp_path / "match"
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm_match", "--model_type", "modernbert",
                   "--mlm_probability", "0.3", "--objective_weights", "match=0.5", "--max_steps", "4",
                   "--eval_steps", "4", "--save_steps", "2", "--logging_steps", "2", "--output_dir", str(out)))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForMaskedLM"] and config["classifier_pooling"] == "mean"
    from safetensors import safe_open

    def keys(folder):
        return set(safe_open(str(folder / "model.safetensors"), "pt").keys())

    assert keys(out / "checkpoint-4") - keys(out) == {"match_head.weight", "match_head.bias"}  # training-only
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    trained = [h for h in history if "loss" in h]
    assert [h["step"] for h in trained] == [2, 4]
    assert all(h["match_loss"] > 0 and 0 <= h["match_accuracy"] <= 1 and h["mlm_loss"] > 0 for h in trained)
    assert any(0 <= h.get("eval_match_accuracy", -1) <= 1 for h in history)
    card = (out / "README.md").read_text()
    assert "| loss | mlm + 0.5 x match |" in card and "| token matching | each unmasked token" in card

    assert "| packing | one pair per row, padded |" in card

    # --isolate_documents: several pairs per row, each attending to itself (tests/test_sentence_pairs.py has the
    # exactness); fewer rows than the one-pair-per-row run made of the same corpus (13,913 against 15,875).
    packed = tmp_path / "packed"
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm_match", "--model_type", "modernbert",
                   "--isolate_documents", "--max_steps", "2", "--eval_steps", "2", "--logging_steps", "2",
                   "--save_strategy", "no", "--output_dir", str(packed)))
    packed_card = (packed / "README.md").read_text()
    assert "| packing | several whole pairs per row, each attending to itself only |" in packed_card

    def sequences(text):
        return int(re.search(r"\| training sequences \| ([\d,]+) \|", text).group(1).replace(",", ""))

    assert sequences(packed_card) < 0.9 * sequences(card)  # debug.yaml rows hold 64 tokens: pairs of up to 61


def test_the_masked_lm_preset_trains_isolated_documents_in_eager_attention_at_batch_32(tmp_path):
    # budget.yaml as it ships, two steps on a few documents: the settings its 30-minute side-by-side chose (batch
    # 32, eager attention, documents packed apart) reach the run and its card; two steps end it before the budget.
    preset = ROOT / "recipes" / "configs" / "budget.yaml"
    tokenizer = ROOT / "tests" / "golden" / "debug_tokenizer"
    _ok(run_recipe(PRETRAIN, "--config", str(preset), "--max_steps", "2", "--max_train_documents", "200",
                   "--logging_steps", "1", "--eval_strategy", "no", "--validation_split_percentage", "0",
                   "--save_strategy", "no", "--tokenizer_name", str(tokenizer), "--output_dir", str(tmp_path)))
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    steps = [h for h in history if "loss" in h]
    assert [h["step"] for h in steps] == [1, 2] and all(h["mlm_loss"] > 0 for h in steps)
    assert steps[0]["num_input_tokens_seen"] == 32 * 128  # one full batch of packed rows, no padding
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForMaskedLM"] and config["classifier_pooling"] == "mean"
    card = (tmp_path / "README.md").read_text()
    assert "| attention | eager |" in card and "| classifier pooling | mean |" in card
    assert "| packing | documents isolated (block-diagonal attention, positions restart per document) |" in card


def test_the_recommended_preset_packs_pairs_in_eager_attention_and_compiles_by_region_on_request(tmp_path):
    # The preset itself (packed pairs, eager attention, the fused AdamW default), compiled as --torch_compile asks
    # (block by block), two steps of a smaller batch: the second batch's shapes differ from the first's, so the
    # graph is compiled again (dynamic). No validation split: evaluation would compile the eval graph too, and the
    # test is about training.
    preset = ROOT / "recipes" / "configs" / "budget_match.yaml"
    tokenizer = ROOT / "tests" / "golden" / "debug_tokenizer"
    _ok(run_recipe(PRETRAIN, "--config", str(preset), "--max_steps", "2", "--per_device_train_batch_size", "8",
                   "--max_train_documents", "200", "--logging_steps", "1", "--eval_strategy", "no",
                   "--validation_split_percentage", "0", "--save_strategy", "no",
                   "--torch_compile", "true", "--tokenizer_name", str(tokenizer), "--output_dir", str(tmp_path)))
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    assert [h["step"] for h in history if "loss" in h] == [1, 2]
    assert all(h["match_loss"] > 0 and h["mlm_loss"] > 0 for h in history if "loss" in h)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForMaskedLM"] and config["classifier_pooling"] == "mean"
    assert (config["hidden_size"], config["num_hidden_layers"]) == (256, 4)
    card = (tmp_path / "README.md").read_text()
    assert "| packing | several whole pairs per row, each attending to itself only |" in card
    assert "| attention | eager |" in card
    assert "| compiled | torch.compile, by region (one block's graph for all blocks) |" in card
    assert "| optimizer | adamw_torch_fused |" in card
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as weights:  # saved under the model's own names
        assert "model.layers.3.attn.Wqkv.weight" in weights.keys()
        assert not any("_orig_mod" in name for name in weights.keys())
