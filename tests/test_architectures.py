"""Layer 1: every registered architecture (BERT, RoBERTa, ModernBERT) with our speed features: sparse prediction
gives the stock loss and gradients, a packed document's outputs equal its outputs alone, the config comes from the
model type, flags and overrides as run_mlm.py builds it, and the time-keyed schedule ends with the budget."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, BertConfig, ModernBertConfig, Trainer, TrainingArguments

from hf_pretrain import ModelArguments
from hf_pretrain.constants import IGNORE_INDEX
from hf_pretrain.data.tokenizer import BERT_SPECIALS, ROBERTA_SPECIALS, train_tokenizer
from hf_pretrain.errors import HfPretrainError
from hf_pretrain.models.architectures import architecture_for, architecture_names
from hf_pretrain.models.loading import build_config, build_pretraining_model
from hf_pretrain.objectives.collators import document_positions
from hf_pretrain.objectives.masking import word_start_table

from .conftest import synthetic_documents

pytestmark = pytest.mark.unit

SMALL = dict(vocab_size=300, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=48,
             max_position_embeddings=80, pad_token_id=1)
# Beyond SMALL and no dropout: ModernBERT's two local layers with a 4-token window (half-width 2) and one global
# one, so that isolation must hold in both.
EXTRA = {"modernbert": dict(global_attn_every_n_layers=3, local_attention=4)}
# Every registered encoder with a masked-LM head, found in the registry: a new architecture module is tested here
# without a line added.
MASKED_LM = sorted(name for name in architecture_names() if architecture_for(name).masked_lm is not None
                   and architecture_for(name).causal_lm is None)


def _stock_config(model_type: str, **changes):
    no_dropout = {name: 0.0 for names in architecture_for(model_type).dropout_fields.values() for name in names}
    return AutoConfig.for_model(model_type, **{**SMALL, **no_dropout, **EXTRA.get(model_type, {}), **changes})


def _stock_class(model_type: str):
    training_class = architecture_for(model_type).masked_lm
    return next(c for c in training_class.__mro__ if c.__module__.startswith("transformers."))


STOCK = {name: (_stock_class(name), _stock_config(name)) for name in MASKED_LM}


def _pair(model_type: str, attn_implementation: str = "sdpa"):
    stock_class, config = STOCK[model_type]
    config = config.__class__.from_dict({**config.to_dict(), "attn_implementation": attn_implementation})
    torch.manual_seed(0)
    stock = stock_class(config).eval()
    ours = architecture_for(model_type).masked_lm(config).eval()
    ours.load_state_dict(stock.state_dict())
    ours.sparse_prediction = True
    return stock, ours


def _batch(rows=4, length=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 300, (rows, length), generator=g)
    labels = torch.where(torch.rand(rows, length, generator=g) < 0.3, ids, IGNORE_INDEX)
    attention = torch.ones(rows, length, dtype=torch.long)
    attention[::2, length // 2 :] = 0
    labels[attention == 0] = IGNORE_INDEX
    return ids, labels, attention


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("model_type", sorted(STOCK))
def test_sparse_prediction_gives_the_stock_loss_and_gradients(model_type, training):
    """In evaluation the head's logits at the masked positions; in a training step the loss fused with the decoder
    (no logits, their argmax). Either way the stock loss and gradients (dropout is off in both models)."""
    stock, ours = _pair(model_type)
    stock.train(training), ours.train(training)
    ids, labels, attention = _batch()
    stock_output = stock(input_ids=ids, attention_mask=attention, labels=labels)
    stock_loss = stock_output.loss
    output = ours(input_ids=ids, attention_mask=attention, labels=labels)
    masked = labels != IGNORE_INDEX
    if training:
        assert output.logits is None
        assert torch.equal(output.mlm_predictions, stock_output.logits[masked].argmax(-1))
    else:
        assert output.logits.shape == (int(masked.sum()), 300)  # (n_masked, vocab)
    assert output.loss.item() == pytest.approx(stock_loss.item(), rel=1e-5)
    stock_loss.backward()
    output.loss.backward()
    grad = {n: p.grad for n, p in stock.named_parameters() if p.grad is not None}
    for name, parameter in ours.named_parameters():
        if name in grad:
            assert torch.allclose(parameter.grad, grad[name], atol=1e-6), name


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("model_type", sorted(STOCK))
def test_a_packed_document_gives_its_outputs_alone(model_type, attn_implementation):
    _, ours = _pair(model_type, attn_implementation)
    ours.sparse_prediction = False
    cls = 2
    docs = [torch.tensor([cls, *range(10, 19)]), torch.tensor([cls, *range(30, 36)]), torch.tensor([cls, 40, 41])]
    row = torch.cat(docs)[None]
    document_ids, positions = document_positions(row, cls)
    with torch.no_grad():
        packed = ours(input_ids=row, document_ids=document_ids, position_ids=positions).logits[0]
        crossing = ours(input_ids=row).logits[0]
        start, error = 0, 0.0
        for doc in docs:
            alone = ours(input_ids=doc[None]).logits[0]
            error = max(error, (packed[start : start + len(doc)] - alone).abs().max().item())
            start += len(doc)
    assert error < 1e-4, (model_type, error)
    # Without isolation the documents see each other: far more than the isolated error.
    assert (crossing[10:16] - packed[10:16]).abs().max().item() > max(100 * error, 1e-4)


def test_padding_in_isolated_rows_stays_finite_and_saved_configs_are_stock(tmp_path):
    _, ours = _pair("modernbert")
    row = torch.tensor([[2, 10, 11, 12, 2, 30, 31, 0, 0, 0]])
    attention = (row != 0).long()
    document_ids, positions = document_positions(row, 2)
    labels = torch.full_like(row, IGNORE_INDEX)
    labels[0, [1, 5]] = row[0, [1, 5]]
    loss = ours(input_ids=row, attention_mask=attention, document_ids=document_ids, position_ids=positions,
                labels=labels).loss
    assert torch.isfinite(loss)
    from hf_pretrain.models.export import export_model

    export_model(ours, str(tmp_path))
    saved = ModernBertConfig.from_pretrained(tmp_path)
    assert saved.architectures == ["ModernBertForMaskedLM"] and saved.sparse_prediction is False


# --- configs ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizers():
    texts = [" ".join(doc) for doc in synthetic_documents(60)]
    return {"wordpiece": train_tokenizer(texts, "wordpiece", BERT_SPECIALS, vocab_size=300),
            "bpe": train_tokenizer(texts, "bpe", ROBERTA_SPECIALS, vocab_size=400)}


def test_config_from_model_type_flags_and_overrides(tokenizers):
    tokenizer = tokenizers["bpe"]
    args = ModelArguments(model_type="modernbert", hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                          config_overrides="local_attention=32,global_attn_every_n_layers=2,norm_bias=true",
                          hidden_dropout_prob=0.1)
    config = build_config(args, tokenizer, max_seq_length=128)
    assert config.model_type == "modernbert" and (config.hidden_size, config.num_hidden_layers) == (64, 4)
    assert config.intermediate_size == 96  # ModernBERT's 1.5 x width, kept
    assert config.local_attention == 32 and config.norm_bias is True
    assert config.layer_types == ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]
    assert config.embedding_dropout == config.mlp_dropout == 0.1 and config.attention_dropout == 0.0
    assert config.vocab_size == len(tokenizer) and config.pad_token_id == tokenizer.pad_token_id
    assert config.cls_token_id == tokenizer.cls_token_id and config.sep_token_id == tokenizer.sep_token_id
    bert = build_config(ModelArguments(hidden_size=128, num_attention_heads=2), tokenizers["wordpiece"], 128)
    assert bert.model_type == "bert" and bert.intermediate_size == 512 and bert.num_hidden_layers == 12


@pytest.mark.faults
def test_config_errors_are_one_line(tokenizers, tmp_path):
    tokenizer = tokenizers["bpe"]
    with pytest.raises(HfPretrainError, match="--config_overrides: 'hiden_size' is not a field of the roberta config"):
        build_config(ModelArguments(model_type="roberta", config_overrides="hiden_size=64"), tokenizer, 128)
    with pytest.raises(HfPretrainError, match=r"--config_overrides: num_hidden_layers=four is not a int"):
        build_config(ModelArguments(model_type="roberta", config_overrides="num_hidden_layers=four"), tokenizer, 128)
    with pytest.raises(HfPretrainError, match="--model_type robert: not a model type transformers knows"):
        build_config(ModelArguments(model_type="robert"), tokenizer, 128)
    with pytest.raises(HfPretrainError, match=r"--max_seq_length 512 exceeds .* \(roberta positions start at 2\)"):
        build_config(ModelArguments(model_type="roberta"), tokenizer, 512)
    with pytest.raises(HfPretrainError, match="needs a next-sentence head, which modernbert has none of"):
        build_pretraining_model(ModelArguments(model_type="modernbert", hidden_size=32, num_hidden_layers=1,
                                               num_attention_heads=2), tokenizer, with_nsp=True, max_seq_length=64)
    # A config file as the starting point.
    BertConfig(**SMALL).save_pretrained(tmp_path)
    config = build_config(ModelArguments(config_name=str(tmp_path), num_hidden_layers=1), tokenizers["wordpiece"], 64)
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (32, 1, len(tokenizers["wordpiece"]))


def test_other_model_types_train_as_their_stock_class(tokenizers):
    args = ModelArguments(model_type="distilbert", config_overrides="dim=32,n_layers=1,n_heads=2,hidden_dim=64")
    model = build_pretraining_model(args, tokenizers["wordpiece"], with_nsp=False, max_seq_length=64)
    assert type(model).__name__ == "DistilBertForMaskedLM"
    with pytest.raises(HfPretrainError, match="--isolate_documents needs an architecture hf_pretrain knows"):
        build_pretraining_model(args, tokenizers["wordpiece"], with_nsp=False, max_seq_length=64,
                                isolate_documents=True)


@pytest.mark.parametrize("kind, specials", [("wordpiece", BERT_SPECIALS), ("bpe", ROBERTA_SPECIALS),
                                            ("bpe", BERT_SPECIALS), ("unigram", BERT_SPECIALS)])
def test_each_tokenizer_type_marks_words_and_lays_out_pairs(kind, specials):
    texts = [" ".join(doc) for doc in synthetic_documents(60)]
    tokenizer = train_tokenizer(texts, kind, specials, vocab_size=400)
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == list(specials.order)
    ids = tokenizer("the cat", "a dog")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    middle = [specials.sep, specials.sep] if specials.double_separator else [specials.sep]
    assert tokens[0] == specials.cls and tokens[-1] == specials.sep
    assert "".join(tokens).count(specials.sep) == 1 + len(middle)
    starts = word_start_table(tokenizer)[torch.tensor(tokenizer("the cat sat", add_special_tokens=False)["input_ids"])]
    assert int(starts.sum()) == 3  # three words, each starting once


# --- optimizer and schedule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", ["bert", "modernbert"])
def test_no_weight_decay_on_norms_and_biases(model_type, tmp_path):
    _, ours = _pair(model_type)
    trainer = Trainer(model=ours, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none"))
    decayed = set(trainer.get_decay_parameter_names(ours))
    names = {name for name, _ in ours.named_parameters()}
    assert decayed and not any("norm" in n.lower() or n.endswith("bias") for n in decayed)
    assert any(n.endswith(("query.weight", "Wqkv.weight")) for n in decayed)
    assert names - decayed  # the norms and biases


def test_time_keyed_schedule_reaches_its_floor_when_the_budget_ends():
    from transformers import TrainerControl, TrainerState

    from hf_pretrain.training.callbacks import TimeBudgetCallback
    from hf_pretrain.training.schedules import TimeKeyedMultiplier, time_keyed_schedule

    now = [0.0]
    multiplier = TimeKeyedMultiplier(60, "linear", warmup_ratio=0.1, min_lr_ratio=0.05)
    budget = TimeBudgetCallback(1.0, multiplier, clock=lambda: now[0])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = time_keyed_schedule(optimizer, multiplier)
    args, state, control = TrainingArguments(output_dir="unused", use_cpu=True), TrainerState(), TrainerControl()
    budget.on_train_begin(args, state, control)
    rates, stopped_at = [], None
    for step in range(1, 200):  # one step every 0.5 s of a fake clock
        now[0] = 0.5 * step
        optimizer.step()
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
        budget.on_step_end(args, state, control)
        if control.should_training_stop:
            stopped_at = now[0]
            break
    assert stopped_at == 60.0 and control.should_save  # the budget ends training...
    # The rate for step n+1 is set when step n ends, from the time spent until then.
    assert rates[12] == pytest.approx(1.0)  # ...after the warmup (6 s) at the peak...
    assert rates[-1] == pytest.approx(0.05 + 0.95 * 0.5 / 54, abs=1e-6)  # ...one step from the floor...
    assert multiplier.at(1.0) == pytest.approx(0.05)  # ...which it reaches at the budget
    assert [multiplier.at(f) for f in (0.0, 0.05, 0.1)] == pytest.approx([0.0, 0.5, 1.0])
    wsd = TimeKeyedMultiplier(60, "warmup_stable_decay", decay_ratio=0.2)
    assert [wsd.at(f) for f in (0.5, 0.8, 0.9, 1.0)] == pytest.approx([1.0, 1.0, 0.5, 0.0])


def test_a_time_budgeted_run_s_bar_counts_minutes_of_the_budget():
    """Not steps of the placeholder --max_steps (0/1000000 and an ETA of 350 hours)."""
    from transformers import TrainerControl, TrainerState

    from hf_pretrain.training.callbacks import BudgetProgressCallback, TimeBudgetCallback

    now = [0.0]
    budget = TimeBudgetCallback(30.0, clock=lambda: now[0])
    bar = BudgetProgressCallback(budget)
    args, state, control = TrainingArguments(output_dir="unused", use_cpu=True), TrainerState(), TrainerControl()
    state.max_steps = 1_000_000
    for callback in (budget, bar):
        callback.on_train_begin(args, state, control)
    for step in (1, 2, 3):
        now[0], state.global_step = 300.0 * step, step  # five minutes a step
        for callback in (budget, bar):
            callback.on_step_end(args, state, control)
    assert bar.training_bar.total == 30.0 and bar.training_bar.n == 15.0
    assert "15.0/30.0 min of the budget" in str(bar.training_bar) and "step 3" in str(bar.training_bar)
    bar.on_train_end(args, state, control)
