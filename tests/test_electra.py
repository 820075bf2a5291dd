"""ELECTRA: the corruption arithmetic, sampling, shared embeddings, learning, and the recipe end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from transformers import ElectraConfig

from hf_pretrain.models.electra import build_electra, corrupt, sample_tokens
from hf_pretrain.constants import IGNORE_INDEX

from .conftest import ROOT, run_processes, run_recipe

pytestmark = pytest.mark.end_to_end

ELECTRA_DEBUG = str(ROOT / "recipes" / "configs" / "electra_debug.yaml")


def _model(seed=0, **kwargs):
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=300, pad_token_id=0, embedding_size=64, hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=128)
    return build_electra(config, seed=seed, **kwargs)


def _batch(rows=8, length=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    original = torch.randint(5, 300, (rows, length), generator=g)
    labels = torch.full_like(original, IGNORE_INDEX)
    selected = torch.rand(original.shape, generator=g) < 0.15
    labels[selected] = original[selected]
    inputs = torch.where(selected, 4, original)  # [MASK]
    return inputs, labels, original


def test_replacements_only_at_masked_positions_and_correct_samples_are_original():
    inputs, labels, original = _batch()
    masked = labels != IGNORE_INDEX
    sampled = torch.randint(5, 300, (int(masked.sum()),))
    sampled[::2] = original[masked][::2]  # half of the samples happen to be right
    corrupted, replaced = corrupt(inputs, labels, sampled)
    assert torch.equal(corrupted[~masked], original[~masked])  # outside the masks: the original tokens
    assert torch.equal(corrupted[masked], sampled)
    assert torch.equal(replaced, (corrupted != original).long())  # labels = (input != original)
    assert (replaced[masked][::2] == 0).all()  # a correct sample is labelled original


def test_padding_is_never_labelled_replaced():
    inputs, labels, original = _batch()
    attention = torch.ones_like(inputs)
    attention[:, -5:] = 0
    labels[:, -5:] = original[:, -5:]  # even if padding positions were selected
    sampled = (original[labels != IGNORE_INDEX] + 1) % 300
    _, replaced = corrupt(inputs, labels, sampled, attention)
    assert (replaced[:, -5:] == 0).all()


def test_sampling_follows_the_softmax_and_the_seed():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(100_000, 1)
    draws = sample_tokens(logits, torch.Generator().manual_seed(0))
    frequencies = torch.bincount(draws, minlength=4).float() / len(draws)
    assert torch.allclose(frequencies, logits[0].softmax(-1), atol=0.005)
    assert (logits == torch.tensor([2.0, 1.0, 0.0, -1.0])).all()  # the caller's logits untouched (they are read after)
    # Rows of their own distributions (bf16, as the generator's logits under autocast), a token of zero probability
    # never drawn, and a row whose mass sits at its last token (the sum's end, where a search could run past it).
    rows = torch.tensor([[0.0, 3.0, -1e4, 1.0], [-1e4, -1e4, -1e4, 5.0]], dtype=torch.bfloat16).repeat(50_000, 1)
    draws = sample_tokens(rows, torch.Generator().manual_seed(1)).view(50_000, 2)
    expected = torch.tensor([0.0, 3.0, 1.0]).softmax(-1)
    frequencies = torch.bincount(draws[:, 0], minlength=4).float() / 50_000
    assert frequencies[2] == 0 and torch.allclose(frequencies[[0, 1, 3]], expected, atol=0.006)
    assert (draws[:, 1] == 3).all()
    again = sample_tokens(logits[:1000], torch.Generator().manual_seed(0))
    assert torch.equal(again, sample_tokens(logits[:1000], torch.Generator().manual_seed(0)))
    assert not torch.equal(again, sample_tokens(logits[:1000], torch.Generator().manual_seed(1)))


def test_generator_and_discriminator_share_embeddings(tmp_path):
    from safetensors.torch import load_file

    from hf_pretrain.models.electra import SHARED_EMBEDDINGS

    model = _model()
    generator, discriminator = model.generator.electra.embeddings, model.electra.embeddings
    for name in SHARED_EMBEDDINGS:  # the same parameter objects: tied, as _tied_weights_keys declares
        assert generator.get_parameter(name) is discriminator.get_parameter(name)
    shared = model.electra.embeddings.word_embeddings.weight
    assert model.generator.generator_lm_head.weight is shared
    assert model.generator.config.hidden_size == 16 and model.config.hidden_size == 64
    # Shared tensors are stored once, under the discriminator, in a checkpoint of the whole training model.
    model.save_pretrained(tmp_path)
    stored = load_file(str(tmp_path / "model.safetensors"))
    assert not any(k.startswith("generator.electra.embeddings.") for k in stored)
    assert "generator.generator_lm_head.weight" not in stored and "electra.embeddings.word_embeddings.weight" in stored
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    # A real PreTrainedModel: it reloads from its own checkpoint, ties included.
    from hf_pretrain.models.electra import ElectraForReplacedTokenDetection

    again = ElectraForReplacedTokenDetection.from_pretrained(tmp_path)
    assert again.generator.generator_lm_head.weight is again.electra.embeddings.word_embeddings.weight
    assert torch.equal(again.generator.electra.embeddings.LayerNorm.bias, model.electra.embeddings.LayerNorm.bias)


def test_loss_decreases_on_a_fixed_batch():
    model = _model()
    inputs, labels, _ = _batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(inputs, labels, attention_mask=torch.ones_like(inputs)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_loss_is_generator_plus_weighted_discriminator():
    model = _model()
    inputs, labels, _ = _batch()
    out = model(inputs, labels, attention_mask=torch.ones_like(inputs))
    assert out.loss.item() == pytest.approx(out.generator_loss.item() + 50.0 * out.discriminator_loss.item(), rel=1e-5)


@pytest.fixture(scope="module")
def electra_checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("electra")
    result = run_recipe("recipes/pretrain_electra.py", "--config", ELECTRA_DEBUG, "--max_steps", "6", "--save_steps", "3",
                        "--eval_steps", "6", "--logging_steps", "3", "--output_dir", str(out))
    assert result.returncode == 0, result.stdout[-4000:]
    return out


def test_recipe_logs_and_saves_standard_checkpoints(electra_checkpoint):
    history = json.loads((electra_checkpoint / "trainer_state.json").read_text())["log_history"]
    train = [h for h in history if "loss" in h]
    expected = {"generator_loss", "generator_accuracy", "discriminator_loss", "discriminator_accuracy",
                "replaced_precision", "replaced_recall", "replaced_fraction", "train_tokens_per_second"}
    assert len(train) == 2 and all(expected <= h.keys() for h in train)
    assert 0.05 < train[-1]["replaced_fraction"] < 0.2  # ~15 % masked, minus the correct samples
    assert any("eval_discriminator_accuracy" in h for h in history)
    assert json.loads((electra_checkpoint / "config.json").read_text())["architectures"] == ["ElectraForPreTraining"]
    generator = json.loads((electra_checkpoint / "generator" / "config.json").read_text())
    assert generator["architectures"] == ["ElectraForMaskedLM"] and generator["hidden_size"] == 16
    assert "ELECTRA replaced-token detection" in (electra_checkpoint / "README.md").read_text()


def test_discriminator_loads_in_plain_transformers_and_finetunes(electra_checkpoint, tmp_path):
    from .test_glue import FIXTURES, write_task

    probe = (
        "import sys; sys.modules['hf_pretrain'] = None\n"
        "from transformers import AutoModelForPreTraining, AutoModelForMaskedLM, AutoTokenizer\n"
        f"d = {str(electra_checkpoint)!r}\n"
        "print(type(AutoModelForPreTraining.from_pretrained(d)).__name__, "
        "type(AutoModelForMaskedLM.from_pretrained(d + '/generator')).__name__, len(AutoTokenizer.from_pretrained(d)))\n"
    )
    loaded = run_recipe("-c", probe)
    assert "ElectraForPreTraining ElectraForMaskedLM" in loaded.stdout, loaded.stdout[-2000:]

    header, rows = FIXTURES["MRPC"]
    write_task(tmp_path / "glue", "MRPC", header, rows * 10)
    result = run_recipe("recipes/finetune_glue.py", "--config", "recipes/configs/glue.yaml", "--model_name_or_path",
                        str(electra_checkpoint), "--glue_dir", str(tmp_path / "glue"), "--output_dir",
                        str(tmp_path / "out"), "--max_steps", "2")
    assert result.returncode == 0, result.stdout[-3000:]
    config = json.loads((tmp_path / "out" / "seed_1" / "config.json").read_text())
    assert config["architectures"] == ["ElectraForSequenceClassification"]
    assert (tmp_path / "out" / "glue_results.json").is_file()


@pytest.mark.faults
def test_resume_restores_both_models(electra_checkpoint, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(electra_checkpoint / "checkpoint-3", out / "checkpoint-3")
    result = run_recipe("recipes/pretrain_electra.py", "--config", ELECTRA_DEBUG, "--max_steps", "6",
                        "--save_steps", "3", "--eval_strategy", "no", "--logging_steps", "3", "--output_dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "resuming from" in result.stdout
    resumed = json.loads((out / "trainer_state.json").read_text())["log_history"]
    original = json.loads((electra_checkpoint / "trainer_state.json").read_text())["log_history"]
    # Same data order, masks drawn afresh: the loss at step 6 is close to the uninterrupted run's.
    loss_at = lambda h: next(x["loss"] for x in h if x.get("step") == 6 and "loss" in x)  # noqa: E731
    assert loss_at(resumed) == pytest.approx(loss_at(original), rel=0.1)


def test_two_process_bf16_run_with_accumulation_whole_words_and_isolated_documents(tmp_path):
    result = run_processes(
        "recipes/pretrain_electra.py", "--config", ELECTRA_DEBUG, "--max_steps", "4", "--eval_steps", "4",
        "--save_strategy", "no", "--logging_steps", "2", "--bf16", "--gradient_accumulation_steps", "2",
        "--isolate_documents", "--masking_unit", "whole_word", "--output_dir", str(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:]
    card = (tmp_path / "README.md").read_text()
    assert "| batch size (global) | 64 |" in card and "| precision | bf16 |" in card  # 16 x 2 processes x 2 steps
    assert "| masking unit | whole_word |" in card and "documents isolated" in card
    assert json.loads((tmp_path / "trainer_state.json").read_text())["global_step"] == 4


@pytest.mark.faults
def test_nsp_objective_is_refused(tmp_path):
    result = run_recipe("recipes/pretrain_electra.py", "--config", ELECTRA_DEBUG, "--objective", "mlm_nsp",
                        "--output_dir", str(tmp_path))
    assert result.returncode == 2 and "error: this recipe trains --objective electra or electra_match; for --objective mlm_nsp use recipes/pretrain_bert.py" in result.stdout


# --- ELECTRA on a ModernBERT backbone (the electra_budget preset) ------------------------------------------------

ELECTRA_BUDGET = str(ROOT / "recipes" / "configs" / "electra_budget.yaml")
ELECTRA_BUDGET_MATCH = str(ROOT / "recipes" / "configs" / "electra_budget_match.yaml")
DEBUG_TOKENIZER = ROOT / "tests" / "golden" / "debug_tokenizer"


def _modernbert(seed=0, **kwargs):
    from transformers import ModernBertConfig

    from hf_pretrain.models.architectures.modernbert import ModernBertForReplacedTokenDetection

    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=300, pad_token_id=0, hidden_size=64, num_hidden_layers=4,
                              num_attention_heads=2, intermediate_size=96, global_attn_every_n_layers=3)
    return build_electra(config, ModernBertForReplacedTokenDetection, generator_size=0.5, seed=seed, **kwargs)


def test_modernbert_generator_is_shallower_same_width_and_shares_the_embeddings(tmp_path):
    from safetensors.torch import load_file

    from hf_pretrain.models.architectures.modernbert import ModernBertForReplacedTokenDetection

    model = _modernbert()
    generator = model.generator
    assert generator.config.num_hidden_layers == 2 and generator.config.hidden_size == 64
    assert generator.config.layer_types == model.config.layer_types[:2]  # the discriminator's first layers' kinds
    shared = model.model.embeddings.tok_embeddings.weight
    assert generator.model.embeddings.tok_embeddings.weight is shared and generator.decoder.weight is shared
    assert generator.model.embeddings.norm.weight is model.model.embeddings.norm.weight
    model.save_pretrained(tmp_path)
    stored = load_file(str(tmp_path / "model.safetensors"))
    assert not any(k.startswith("generator.model.embeddings.") for k in stored) and "generator.decoder.weight" not in stored
    again = ModernBertForReplacedTokenDetection.from_pretrained(tmp_path)
    assert again.generator.decoder.weight is again.model.embeddings.tok_embeddings.weight
    assert torch.equal(again.classifier.weight, model.classifier.weight)


def test_modernbert_loss_decreases_and_packed_documents_match_separate_rows():
    model = _modernbert()
    inputs, labels, _ = _batch()
    ones = torch.ones_like(inputs)
    # Two documents of 12 tokens packed in one row, kept apart, score as the same 24 tokens in two rows of 12.
    model.eval()
    packed = model.discriminator_logits(inputs[:1], model.encoder_inputs(
        ones[:1], None, torch.arange(12).repeat(2)[None], torch.tensor([[0] * 12 + [1] * 12])))
    separate = model.discriminator_logits(inputs[0].view(2, 12), model.encoder_inputs(ones[0].view(2, 12), None,
                                                                                         None, None))
    assert torch.allclose(packed.view(2, 12), separate, atol=1e-5)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        out = model(inputs, labels, attention_mask=ones)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert out.loss.item() == pytest.approx(out.generator_loss.item() + 50.0 * out.discriminator_loss.item(), rel=1e-5)


def test_modernbert_export_is_three_stock_folders_with_the_trained_weights(tmp_path):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForTokenClassification

    from hf_pretrain.models.export import export_model

    model = _modernbert().eval()
    folders = export_model(model, str(tmp_path))
    assert folders == [str(tmp_path), str(tmp_path / "discriminator"), str(tmp_path / "generator")]
    encoder = AutoModel.from_pretrained(tmp_path)
    discriminator = AutoModelForTokenClassification.from_pretrained(tmp_path / "discriminator")
    generator = AutoModelForMaskedLM.from_pretrained(tmp_path / "generator")
    assert [type(m).__name__ for m in (encoder, discriminator, generator)] == [
        "ModernBertModel", "ModernBertForTokenClassification", "ModernBertForMaskedLM"]
    for folder in folders:  # no training-only field reaches a stock config
        assert not {"generator_size", "discriminator_weight"} & json.loads((Path(folder) / "config.json").read_text()).keys()
    assert discriminator.config.id2label == {0: "replaced"}
    inputs, labels, _ = _batch(rows=2)
    ones = torch.ones_like(inputs)
    with torch.no_grad():
        expected = model.discriminator_logits(inputs, model.encoder_inputs(ones, None, None, None))
        assert torch.allclose(discriminator(inputs, attention_mask=ones).logits.squeeze(-1), expected, atol=1e-5)
        assert torch.allclose(encoder(inputs, attention_mask=ones).last_hidden_state,
                              model.model(inputs, attention_mask=ones).last_hidden_state, atol=1e-5)
        hidden = model.generator.model(inputs, attention_mask=ones).last_hidden_state
        assert torch.allclose(generator(inputs, attention_mask=ones).logits,
                              model.generator.decoder(model.generator.head(hidden)), atol=1e-5)
    assert generator.decoder.weight.data_ptr() == generator.model.embeddings.tok_embeddings.weight.data_ptr()
    # A GLUE classifier takes the whole encoder from the root folder; only its own head is new.
    from transformers import AutoModelForSequenceClassification

    _, info = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2, output_loading_info=True)
    assert {key.split(".")[0] for key in info["missing_keys"]} == {"head", "classifier"}
    assert not info["unexpected_keys"] and not info["mismatched_keys"]


def test_embedding_size_is_refused_for_a_backbone_without_a_projection(tmp_path):
    result = run_recipe("recipes/pretrain_electra.py", "--config", ELECTRA_BUDGET, "--embedding_size", "128",
                        "--output_dir", str(tmp_path))
    assert result.returncode == 2
    assert "--embedding_size narrows ELECTRA's shared embeddings; --model_type modernbert has no embedding" in result.stdout


def test_the_electra_budget_preset_trains_exports_and_finetunes(tmp_path):
    from .test_glue import FIXTURES, write_task

    out = tmp_path / "electra"
    result = run_recipe("recipes/pretrain_electra.py", "--config", ELECTRA_BUDGET, "--max_train_minutes", "0.3",
                        "--max_train_documents", "200", "--hidden_size", "64", "--intermediate_size", "96",
                        "--logging_steps", "4", "--eval_strategy", "no", "--save_strategy", "no",
                        "--tokenizer_name", str(DEBUG_TOKENIZER), "--output_dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    train = [h for h in history if "loss" in h]
    assert len(train) >= 2 and train[-1]["loss"] < train[0]["loss"]  # it learns
    assert all("replaced_f1" in h for h in train)
    rates = [h["learning_rate"] for h in train]
    assert rates[-1] < 0.5 * max(rates)  # the schedule is keyed to the time budget
    card = (out / "README.md").read_text()
    assert "0.25 of the discriminator's depth, same width" in card and "pipeline_tag: feature-extraction" in card
    # No head reads [CLS]: the encoder is saved for classifiers that pool the tokens' mean, and the card says so.
    assert json.loads((out / "config.json").read_text())["classifier_pooling"] == "mean"
    assert "| classifier pooling | mean |" in card

    header, rows = FIXTURES["MRPC"]
    write_task(tmp_path / "glue", "MRPC", header, rows * 10)
    tuned = run_recipe("recipes/finetune_glue.py", "--config", "recipes/configs/glue.yaml", "--model_name_or_path",
                       str(out), "--glue_dir", str(tmp_path / "glue"), "--output_dir", str(tmp_path / "glue_out"),
                       "--max_steps", "2")
    assert tuned.returncode == 0, tuned.stdout[-3000:]
    config = json.loads((tmp_path / "glue_out" / "seed_1" / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForSequenceClassification"] and config["classifier_pooling"] == "mean"


def test_the_electra_with_token_matching_preset_trains_on_packed_pairs_and_exports_electras_folders(tmp_path):
    out = tmp_path / "electra_match"
    result = run_recipe("recipes/pretrain_electra.py", "--config", ELECTRA_BUDGET_MATCH, "--max_steps", "4",
                        "--max_train_documents", "200", "--hidden_size", "64", "--intermediate_size", "96",
                        "--per_device_train_batch_size", "8", "--logging_steps", "2", "--eval_strategy", "no",
                        "--validation_split_percentage", "0", "--save_steps", "4",
                        "--tokenizer_name", str(DEBUG_TOKENIZER), "--output_dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    train = [h for h in history if "loss" in h]
    assert [h["step"] for h in train] == [2, 4]
    assert all(h["match_loss"] > 0 and 0 <= h["match_accuracy"] <= 1 and "replaced_f1" in h for h in train)
    from safetensors import safe_open

    def keys(folder):
        with safe_open(str(folder / "model.safetensors"), "pt") as weights:
            return set(weights.keys())

    assert {"match_head.weight", "match_head.bias"} <= keys(out / "checkpoint-4")  # an exact resume needs it
    assert [json.loads((folder / "config.json").read_text())["architectures"][0]
            for folder in (out, out / "discriminator", out / "generator")] == [
        "ModernBertModel", "ModernBertForTokenClassification", "ModernBertForMaskedLM"]
    assert not any("match_head" in key for key in keys(out) | keys(out / "discriminator"))
    card = (out / "README.md").read_text()
    assert "| loss | generator MLM + 50 x discriminator + 50 x match |" in card
    assert "| packing | several whole pairs per row, each attending to itself only |" in card
    assert "| token matching | each unmasked token of a sentence pair" in card


@pytest.mark.parametrize("model_type", ["electra", "modernbert"])
def test_attn_implementation_reaches_the_generator_as_well_as_the_discriminator(model_type):
    # --attn_implementation eager is budget_match's 3x faster attention on a CPU; a generator built from the
    # discriminator's config.to_dict() would silently fall back to SDPA.
    from transformers import AutoTokenizer

    from hf_pretrain.models.architectures import architecture_for
    from hf_pretrain.models.arguments import ModelArguments
    from hf_pretrain.models.loading import build_config

    tokenizer = AutoTokenizer.from_pretrained(DEBUG_TOKENIZER)
    for implementation in ("eager", "sdpa"):
        args = ModelArguments(model_type=model_type, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=96, attn_implementation=implementation)
        config = build_config(args, tokenizer, 32)
        model = build_electra(config, architecture_for(model_type).replaced_token_detection, generator_size=0.5)
        used = {name: module.config._attn_implementation for name, module in model.named_modules()
                if hasattr(module, "config")}
        assert set(used.values()) == {implementation}, used
        assert any(name.startswith("generator") for name in used)


@pytest.mark.parametrize("backbone", ["electra", "modernbert"])
def test_token_matching_reads_the_discriminators_output_and_stays_out_of_the_export(backbone, tmp_path):
    # --objective electra_match: a matching head on the discriminator's encoder output, scored at the labelled tokens
    # the generator did not touch, weighted into the loss; training-only, so no exported folder has it.
    from safetensors import safe_open

    from hf_pretrain.models.export import export_model

    model = (_model if backbone == "electra" else _modernbert)(match_weight=2.0).eval()
    encoder = model.electra if backbone == "electra" else model.model
    inputs, labels, _ = _batch()
    ones = torch.ones_like(inputs)
    match_labels = torch.randint(0, 2, inputs.shape, generator=torch.Generator().manual_seed(1))
    match_labels[:, :3] = IGNORE_INDEX  # [CLS] and the like are not scored
    seen = []
    hook = encoder.register_forward_hook(lambda module, args, output: seen.append(output.last_hidden_state))
    with torch.no_grad():
        out = model(inputs, labels, attention_mask=ones, match_labels=match_labels, sequence_id=torch.arange(8))
        plain = model(inputs, labels, attention_mask=ones, sequence_id=torch.arange(8))
    hook.remove()
    scored = (match_labels != IGNORE_INDEX) & (labels == IGNORE_INDEX)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        model.match_head(seen[0][scored]).squeeze(-1), match_labels[scored].float())
    assert out.match_total.item() == scored.sum().item() > 100 and out.match_loss.item() == pytest.approx(expected.item())
    assert 0 <= out.match_correct.item() <= out.match_total.item()
    assert out.loss.item() == pytest.approx(
        out.generator_loss.item() + 50.0 * out.discriminator_loss.item() + 2.0 * out.match_loss.item(), rel=1e-5)
    # Without match labels (or without the head) the step is ELECTRA's own, on the same samples.
    assert plain.match_loss is None and torch.equal(plain.replaced, out.replaced)
    assert plain.loss.item() == pytest.approx(out.loss.item() - 2.0 * out.match_loss.item(), rel=1e-5)
    assert _model().match_head is None

    for folder in export_model(model, str(tmp_path)):
        with safe_open(str(Path(folder) / "model.safetensors"), "pt") as weights:
            assert not any("match_head" in key for key in weights.keys())
        assert "token_match" not in json.loads((Path(folder) / "config.json").read_text())


def _rtd_threshold():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import rtd_threshold
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return rtd_threshold


def test_replacement_sources_draw_uniformly_and_at_the_rows_unigram_frequencies():
    rtd_threshold = _rtd_threshold()
    candidates = torch.arange(5, 105)
    rows = torch.tensor([[7] * 60 + [9] * 30 + [11] * 10])
    unigram = rtd_threshold.replacement_tokens("unigram", 20_000, rows, candidates, torch.Generator().manual_seed(0))
    shares = torch.bincount(unigram, minlength=105)[[7, 9, 11]] / 20_000
    assert torch.allclose(shares, torch.tensor([0.6, 0.3, 0.1]), atol=0.015) and shares.sum() == 1
    uniform = rtd_threshold.replacement_tokens("uniform", 20_000, rows, candidates, torch.Generator().manual_seed(0))
    counts = torch.bincount(uniform, minlength=105)
    assert counts[:5].sum() == 0 and counts[5:].min() > 130 and counts[5:].max() < 270  # 200 expected each
    with pytest.raises(ValueError, match="one of generator, unigram, uniform"):
        rtd_threshold.replacement_tokens("bigram", 1, rows, candidates, torch.Generator())


def test_replaced_token_diagnostic_packs_documents_and_fills_the_same_masks_from_each_source(tokenizer):
    from datasets import Dataset

    rtd_threshold = _rtd_threshold()
    g = torch.Generator().manual_seed(0)
    texts = [torch.randint(5, len(tokenizer), (n,), generator=g).tolist() for n in (40, 70, 30, 120)]
    documents = Dataset.from_dict({"sentences": [[text, [5, 6]] for text in texts]})
    rows = rtd_threshold.validation_rows(documents, tokenizer, rows=3, length=64)
    stream = [t for text in texts for t in [tokenizer.cls_token_id, *text, 5, 6, tokenizer.sep_token_id]]
    assert rows.shape == (3, 64) and rows.flatten().tolist() == stream[:192]

    figures = rtd_threshold.measure(_modernbert().eval(), tokenizer, rows, mlm_probability=0.3, seed=3)
    special = torch.isin(rows, torch.tensor(sorted(set(tokenizer.all_special_ids))))
    selected = (torch.rand(rows.shape, generator=torch.Generator().manual_seed(3)) < 0.3) & ~special
    masked_share = selected.float().mean().item()
    # Uniform draws over the ~300 ids rarely give the original back; the untrained generator does more often,
    # never more than the masked share.
    assert masked_share * 0.95 <= figures["uniform"]["replaced"] <= masked_share
    assert 0 < figures["generator"]["replaced"] <= masked_share
    assert set(figures) == set(rtd_threshold.SOURCES)


def test_replaced_token_figures_by_hand():
    # Two replaced tokens of four: logit > 0 finds one (precision 1, recall 1/2: F1 2/3); a threshold at -0.5 finds
    # both and nothing else (F1 1), and every replaced logit is above every original one (ROC AUC 1).
    figures = _rtd_threshold().detection_figures(torch.tensor([1, 0, 1, 0]), torch.tensor([2.0, -1.0, -0.5, -3.0]))
    assert figures == pytest.approx({"replaced": 0.5, "roc_auc": 1.0, "f1_at_zero": 2 / 3, "best_f1": 1.0,
                                     "best_logit": -0.5})
