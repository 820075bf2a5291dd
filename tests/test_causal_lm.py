"""Causal and prefix LM on decoders: the labels and masks on crafted rows, packed documents kept apart, the prefix
read both ways, and the recipe end to end (reload and generate in plain transformers)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, GPT2Config, LlamaConfig

from hf_pretrain.constants import IGNORE_INDEX
from hf_pretrain.models.causal import causal_training_class
from hf_pretrain.objectives.collators import DataCollatorForCausalLM

from .conftest import DEBUG, ROOT, run_recipe

pytestmark = pytest.mark.end_to_end

TOKENIZER = ROOT / "tests" / "golden" / "debug_tokenizer"
X = IGNORE_INDEX


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER)


def test_labels_are_the_tokens_but_padding_and_each_document_s_first(tokenizer):
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    rows = [{"input_ids": [cls, 10, 11, sep, cls, 12, sep]}, {"input_ids": [13, sep, cls, 14, 15]}]
    plain = DataCollatorForCausalLM(tokenizer)(rows)
    assert plain["labels"].tolist() == [[cls, 10, 11, sep, cls, 12, sep], [13, sep, cls, 14, 15, X, X]]
    assert plain["input_ids"][1].tolist() == [13, sep, cls, 14, 15, pad, pad]
    assert "position_ids" not in plain and plain["attention_mask"][1].tolist() == [1, 1, 1, 1, 1, 0, 0]

    isolated = DataCollatorForCausalLM(tokenizer, isolate_documents=True)(rows)
    assert isolated["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2], [0, 1, 0, 1, 2, 3, 4]]
    # The second document's [CLS] is not predicted from the first one's end; the continued document's first token
    # (row 2) is not a target either, as nothing before it in the row is its own.
    assert isolated["labels"].tolist() == [[X, 10, 11, sep, X, 12, sep], [X, sep, X, 14, 15, X, X]]
    assert "attention_mask" not in isolated  # the stock model reads the packing from the position ids


def test_step_metrics_count_the_model_s_own_loss_over_the_predicted_tokens(tokenizer):
    from hf_pretrain.objectives.metrics import CausalLMMetrics

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = causal_training_class(config)(config).eval()
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    rows = [{"input_ids": [cls, 10, 11, sep, cls, 12, sep]}, {"input_ids": [13, sep, cls, 14, 15]}]
    batch = DataCollatorForCausalLM(tokenizer, isolate_documents=True)(rows)
    with torch.no_grad():
        outputs = model(**batch)
    nll, correct, tokens = CausalLMMetrics().count(outputs, batch).tolist()
    # By hand: every label after the first position that is not ignored, predicted from the position before it.
    logits, labels = outputs.logits[:, :-1], batch["labels"][:, 1:]
    kept = labels != X
    assert tokens == kept.sum().item() == 8
    assert nll == pytest.approx(torch.nn.functional.cross_entropy(logits[kept], labels[kept], reduction="sum").item(),
                                rel=1e-5)
    assert correct == (logits[kept].argmax(-1) == labels[kept]).sum().item()
    # Without a loss (no labels given to the model) the same sum is computed from the logits.
    without_loss = CausalLMMetrics().count({"logits": outputs.logits}, batch).tolist()
    assert without_loss == pytest.approx([nll, correct, tokens], rel=1e-5)


def test_causal_rows_are_cut_from_the_stream_of_documents_isolated_or_not(tokenizer):
    """run_clm.py's layout: each document as [CLS] document [SEP], the stream cut into rows wherever the cut falls
    (no [CLS] added to each row, which a decoder would learn to lean on); isolation changes the mask, not the rows."""
    from datasets import Dataset

    from hf_pretrain.data.sequences import tokenize_documents
    from hf_pretrain.objectives import make_objective
    from hf_pretrain.objectives.arguments import PretrainingArguments

    from .conftest import synthetic_documents

    documents = tokenize_documents(Dataset.from_dict(
        {"text": [" ".join(d) for d in synthetic_documents(n_documents=30, sentences=6, seed=0)]}), tokenizer)
    sentences = documents["sentences"]
    stream = [t for document in sentences for t in [tokenizer.cls_token_id, *[x for s in document for x in s],
                                                    tokenizer.sep_token_id]]
    rows = {}
    for isolate in (False, True):
        objective = make_objective(PretrainingArguments(objective="clm", isolate_documents=isolate), seed=0)
        rows[isolate] = objective.build_rows(documents, tokenizer, split="train", max_seq_length=32, source="t")["input_ids"]
    assert rows[False] == rows[True]
    flat = [t for row in rows[False] for t in row]
    assert flat == stream[: len(flat)] and len(stream) - len(flat) < 32  # in order, the last partial row dropped
    assert sum(row[0] == tokenizer.cls_token_id for row in rows[False]) < len(rows[False]) / 2
    # prefix_lm keeps full-sentence rows ([CLS] chunk [SEP]): its prefix is the row's start.
    prefix = make_objective(PretrainingArguments(objective="prefix_lm"), seed=0)
    prefix_rows = prefix.build_rows(documents, tokenizer, split="train", max_seq_length=32, source="t")["input_ids"]
    assert all(row[0] == tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id for row in prefix_rows)


def test_prefix_lengths_are_uniform_keyed_by_the_batch_and_only_the_rest_is_predicted(tokenizer):
    collator = DataCollatorForCausalLM(tokenizer, prefix_lm=True, seed=3)
    row = list(range(10, 21))  # 11 tokens: a prefix of 1 to 10
    batch = collator([{"input_ids": row, "sequence_id": i} for i in range(4)])
    again = collator([{"input_ids": row, "sequence_id": i} for i in range(4)])
    assert batch["prefix_lengths"].tolist() == again["prefix_lengths"].tolist()  # the same batch, the same draw
    for prefix, labels in zip(batch["prefix_lengths"].tolist(), batch["labels"].tolist()):
        assert labels == [X] * prefix + row[prefix:]

    counts = Counter()
    for start in range(0, 4000, 100):
        drawn = collator([{"input_ids": row, "sequence_id": i} for i in range(start, start + 100)])["prefix_lengths"]
        counts.update(drawn.tolist())
    assert set(counts) == set(range(1, 11))
    assert all(abs(n / 4000 - 0.1) < 0.02 for n in counts.values())  # uniform: 10 % each, 4,000 draws


def _model(kind: str):
    torch.manual_seed(0)
    small = dict(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=64)
    config = LlamaConfig(**small) if kind == "llama" else GPT2Config(
        vocab_size=300, n_embd=32, n_layer=2, n_head=2, n_positions=64, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    return causal_training_class(config)(config).eval()


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_a_packed_document_gives_the_outputs_it_gives_alone(kind, tokenizer):
    model = _model(kind)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    first, second = [cls, 40, 41, 42, sep], [cls, 50, 51, 52, 53, 54, sep]
    collator = DataCollatorForCausalLM(tokenizer, isolate_documents=True)
    packed = collator([{"input_ids": first + second}])
    alone = collator([{"input_ids": second}])
    with torch.no_grad():
        packed_logits = model(**packed).logits[0, len(first):]
        alone_logits = model(**alone).logits[0]
        crossing = model(**DataCollatorForCausalLM(tokenizer)([{"input_ids": first + second}])).logits[0, len(first):]
    assert torch.allclose(packed_logits, alone_logits, atol=1e-5)
    assert not torch.allclose(crossing, alone_logits, atol=1e-3)  # without isolation the second sees the first
    # The loss counts the second document's tokens after its first, and the first document's likewise.
    assert (packed["labels"] != X).sum() == len(first) - 1 + len(second) - 1


def test_the_prefix_is_read_both_ways_and_the_rest_causally(tokenizer):
    model = _model("llama")
    ids = torch.tensor([[5, 60, 61, 62, 63, 64, 65, 66]])
    prefix = torch.tensor([4])

    def logits(input_ids):
        with torch.no_grad():
            return model(input_ids=input_ids, prefix_lengths=prefix).logits[0]

    base = logits(ids)
    late_prefix = ids.clone()
    late_prefix[0, 3] = 70  # the prefix's last token
    changed = logits(late_prefix)
    assert not torch.allclose(changed[0], base[0], atol=1e-4)  # the first token sees the whole prefix
    suffix = ids.clone()
    suffix[0, 6] = 71
    changed = logits(suffix)
    assert torch.allclose(changed[:6], base[:6], atol=1e-5)  # nothing before a suffix token sees it
    assert not torch.allclose(changed[6:], base[6:], atol=1e-4)
    with torch.no_grad():  # without a prefix, plain causal attention: the first token sees itself only
        causal = model(input_ids=late_prefix).logits[0]
        assert torch.allclose(causal[0], model(input_ids=ids).logits[0, 0], atol=1e-5)


@pytest.mark.parametrize("objective, model_type, extra", [
    ("clm", "llama", ["--isolate_documents"]),
    ("clm", "gpt2", []),
    ("prefix_lm", "llama", []),
])
def test_the_recipe_trains_a_decoder_that_plain_transformers_reloads_and_generates_with(objective, model_type, extra,
                                                                                      tmp_path):
    result = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, "--objective", objective, "--model_type",
                        model_type, *extra, "--max_steps", "30", "--eval_steps", "30", "--logging_steps", "10",
                        "--save_strategy", "no", "--learning_rate", "3e-3", "--tokenizer_name", str(TOKENIZER),
                        "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    losses = [h["lm_loss"] for h in history if "loss" in h]
    assert losses[-1] < losses[0] - 0.3  # it learns
    assert [h["eval_perplexity"] for h in history if "eval_loss" in h]
    config = json.loads((tmp_path / "config.json").read_text())
    stock = {"llama": "LlamaForCausalLM", "gpt2": "GPT2LMHeadModel"}[model_type]
    assert config["architectures"] == [stock]
    card = (tmp_path / "README.md").read_text()
    assert {"clm": "causal LM", "prefix_lm": "prefix LM"}[objective] in card and "pipeline_tag: text-generation" in card
    probe = (
        "import sys; sys.modules['hf_pretrain'] = None\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}); tok = AutoTokenizer.from_pretrained({str(tmp_path)!r})\n"
        f"assert type(model).__name__ == {stock!r}, type(model)\n"
        "ids = tok('the function returns', return_tensors='pt', add_special_tokens=False).input_ids\n"
        "out = model.generate(ids, max_new_tokens=5, do_sample=False)\n"
        "assert out.shape == (1, ids.shape[1] + 5), out.shape\n"
        "print('generated', tok.decode(out[0]))\n"
    )
    reload = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=Path("/"))
    assert reload.returncode == 0 and "generated" in reload.stdout, reload.stderr[-3000:]


def test_the_clm_budget_preset_trains_a_tied_decoder_on_a_time_budget(tmp_path):
    result = run_recipe("recipes/pretrain_bert.py", "--config", str(ROOT / "recipes" / "configs" / "clm_budget.yaml"),
                        "--max_train_minutes", "0.5", "--max_train_documents", "200", "--logging_steps", "5",
                        "--torch_compile", "false",  # compiling is test_modern_encoders' (50 s of the half minute)
                        "--eval_strategy", "no", "--save_strategy", "no", "--tokenizer_name", str(TOKENIZER),
                        "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    losses = [h["lm_loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) >= 2 and losses[-1] < losses[0] - 0.3  # it learns
    # The schedule is keyed to the half minute, not to the preset's 1,000,000 steps: the rate falls towards zero by
    # the end (a step-keyed decay would still be at its 2e-3 peak).
    rates = [h["learning_rate"] for h in state["log_history"] if "loss" in h]
    assert max(rates) > 1e-3 and rates[-1] < 0.5 * max(rates), rates
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["tie_word_embeddings"] is True
    card = (tmp_path / "README.md").read_text()
    assert "rows cut from the stream of [CLS] document [SEP]" in card  # not isolated
    assert "| optimizer | Muon (the blocks' matrices) and AdamW (the rest) |" in card  # the preset's --use_muon
    assert "| compiled | no |" in card  # --torch_compile false above
    # Plain transformers reloads one table for the input embedding and the output projection.
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tmp_path))
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_bad_causal_flags_are_one_line(tmp_path):
    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.objectives import make_objective
    from hf_pretrain.objectives.arguments import PretrainingArguments

    # Through the recipe: a model type with no causal LM class, refused before any data work.
    result = run_recipe("recipes/pretrain_bert.py", "--config", DEBUG, "--objective", "clm", "--model_type",
                        "modernbert", "--max_steps", "1", "--tokenizer_name", str(TOKENIZER), "--output_dir",
                        str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stdout
    assert ("error: --objective clm trains a causal-LM model, and transformers has no causal-LM class for "
            "modernbert: choose a model type that has one (llama, gpt2, qwen2, ...)") in result.stdout
    # Flags the objectives refuse as they are made, before any data work.
    for flags, message in [(dict(objective="prefix_lm", isolate_documents=True), "--objective prefix_lm draws one prefix"),
                           (dict(objective="clm", masking="static"), "--objective clm masks nothing")]:
        with pytest.raises(HfPretrainError, match=message):
            make_objective(PretrainingArguments(**flags), 0)
