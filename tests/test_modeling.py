"""Layer 1: sparse MLM prediction and packing without cross-document attention, against the stock models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import BertConfig, BertForMaskedLM, BertForPreTraining, ElectraConfig

from hf_pretrain.objectives.collators import DataCollatorForMaskedLM, document_positions
from hf_pretrain.models.electra import build_electra
from hf_pretrain.constants import IGNORE_INDEX
from hf_pretrain.objectives.metrics import MaskedLMMetrics
from hf_pretrain.models.architectures.bert import TrainingBertForMaskedLM, TrainingBertForPreTraining
from hf_pretrain.data.sequences import pack_sequences
from hf_pretrain.errors import HfPretrainError
from hf_pretrain.models.export import export_model, exported_parameters
from hf_pretrain.models.fused_loss import ROWS_PER_BLOCK, linear_cross_entropy

pytestmark = pytest.mark.unit

CONFIG = dict(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
              max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _batch(rows=8, length=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 500, (rows, length), generator=g)
    labels = torch.where(torch.rand(rows, length, generator=g) < 0.15, ids, IGNORE_INDEX)
    attention = torch.ones(rows, length, dtype=torch.long)
    attention[::2, length // 2 :] = 0
    labels[attention == 0] = IGNORE_INDEX
    return ids, labels, attention


@pytest.mark.parametrize("stock, ours", [(BertForMaskedLM, TrainingBertForMaskedLM),
                                         (BertForPreTraining, TrainingBertForPreTraining)])
def test_sparse_prediction_gives_the_stock_loss_and_gradients(stock, ours):
    torch.manual_seed(0)
    reference = stock(BertConfig(**CONFIG))
    sparse = ours(BertConfig(**CONFIG))
    sparse.load_state_dict(reference.state_dict())
    ids, labels, attention = _batch()
    extra = {"next_sentence_label": torch.tensor([0, 1] * 4)} if stock is BertForPreTraining else {}
    losses, grads, outputs = [], [], []
    for model in (reference, sparse):
        model.zero_grad()
        out = model(input_ids=ids, attention_mask=attention, labels=labels, **extra)
        out.loss.backward()
        losses.append(out.loss.detach())
        grads.append(model.bert.embeddings.word_embeddings.weight.grad.clone())
        outputs.append(out)
    assert torch.allclose(losses[0], losses[1], atol=1e-6)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    logits_of = lambda out: out.prediction_logits if stock is BertForPreTraining else out.logits  # noqa: E731
    masked = labels != IGNORE_INDEX
    # A training step fuses the loss with the decoder: no logits, their argmax at the masked positions.
    assert logits_of(outputs[1]) is None
    assert torch.equal(outputs[1].mlm_predictions, logits_of(outputs[0])[masked].argmax(-1))
    with torch.no_grad():
        evaluated = sparse.eval()(input_ids=ids, attention_mask=attention, labels=labels, **extra)
    assert logits_of(evaluated).shape == (masked.sum(), 500)  # the projection ran at masked positions only
    assert torch.allclose(evaluated.loss, losses[0], atol=1e-6)


def test_sparse_logits_give_the_same_evaluation_metrics():
    torch.manual_seed(0)
    reference = BertForMaskedLM(BertConfig(**CONFIG)).eval()
    sparse = TrainingBertForMaskedLM(BertConfig(**CONFIG)).eval()
    sparse.load_state_dict(reference.state_dict())
    ids, labels, attention = _batch()
    metrics = []
    counter = MaskedLMMetrics()
    for model in (reference, sparse):
        with torch.no_grad():
            outputs = model(input_ids=ids, attention_mask=attention, labels=labels)
        counts = counter.count(outputs, {"labels": labels})
        metrics.append(counter.summarize(dict(zip(counter.names, counts.tolist()))))
    assert metrics[0] == pytest.approx(metrics[1], rel=1e-5)
    # The counted MLM loss is the model's own loss (a mean over the selected tokens), and perplexity its exp.
    assert metrics[1]["mlm_loss"] == pytest.approx(outputs.loss.item(), rel=1e-5)
    assert metrics[1]["perplexity"] == pytest.approx(math.exp(outputs.loss.item()), rel=1e-5)


def test_the_counted_mlm_loss_is_the_mlm_part_alone_and_accuracy_takes_the_first_of_equal_maxima():
    """The metrics reuse the MLM loss our classes report beside the total (no second pass over the logits): with
    NSP in the total it is still the masked tokens' mean cross-entropy; accuracy is argmax's, ties included."""
    torch.manual_seed(0)
    model = TrainingBertForPreTraining(BertConfig(**CONFIG)).eval()
    ids, labels, attention = _batch()
    with torch.no_grad():
        outputs = model(input_ids=ids, attention_mask=attention, labels=labels,
                        next_sentence_label=torch.tensor([0, 1] * 4))
    counter = MaskedLMMetrics()
    totals = dict(zip(counter.names, counter.count(outputs, {"labels": labels}).tolist()))
    recomputed = torch.nn.functional.cross_entropy(outputs.prediction_logits, labels[labels != IGNORE_INDEX])
    assert totals["mlm_nll"] / totals["mlm_selected"] == pytest.approx(recomputed.item(), rel=1e-6)
    assert outputs.loss.item() > recomputed.item() + 0.1  # the total holds the NSP loss too
    # Equal maxima in bf16: the first one is the prediction, as argmax has it.
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, 1.0, 5.0, 5.0]], dtype=torch.bfloat16)
    targets = torch.tensor([[2], [0], [2]])
    counts = counter.count({"logits": logits, "mlm_loss": torch.tensor(1.0)}, {"labels": targets})
    totals = dict(zip(counter.names, counts.tolist()))
    assert totals["mlm_correct"] == (logits.argmax(-1) == targets[:, 0]).sum().item() == 2
    assert totals["mlm_nll"] == 3.0  # the mean, scaled back to a sum over the three tokens
    # No masked token: the model's mean is 0/0, and nothing is counted.
    empty = counter.count({"logits": logits[:0], "mlm_loss": torch.tensor(float("nan"))},
                          {"labels": torch.full((2, 3), IGNORE_INDEX)})
    assert empty.tolist()[:3] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("sparse", [True, False])
def test_modernbert_s_stock_masked_lm_forward_reports_its_loss_for_the_metrics(sparse):
    from transformers import ModernBertConfig

    from hf_pretrain.models.architectures.modernbert import TrainingModernBertForMaskedLM

    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=48, pad_token_id=0, cls_token_id=1, sep_token_id=2,
                              bos_token_id=1, eos_token_id=2, sparse_prediction=sparse)
    model = TrainingModernBertForMaskedLM(config).eval()
    ids, labels, attention = _batch()
    with torch.no_grad():
        outputs = model(input_ids=ids, attention_mask=attention, labels=labels)
    assert outputs.mlm_loss == outputs.loss
    counter = MaskedLMMetrics()
    reused = counter.count(outputs, {"labels": labels})
    recomputed = counter.count({"logits": outputs.logits}, {"labels": labels})
    assert torch.allclose(reused, recomputed, rtol=1e-6)
    assert model(input_ids=ids, attention_mask=attention).get("mlm_loss") is None  # no labels, no loss


def _grad_of(tensor):
    return None if tensor is None else tensor.grad.clone()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("autocast", [False, True])
def test_the_fused_vocabulary_loss_is_the_decoder_s_cross_entropy_with_its_gradients(bias, autocast):
    """Block by block, the loss, its gradients (scaled by the caller's backward) and the argmax are those of
    ``cross_entropy(decoder(hidden))``: exactly in fp32, to bf16's rounding under autocast."""
    g = torch.Generator().manual_seed(0)
    rows = 2 * ROWS_PER_BLOCK + 37  # three blocks, the last one partial
    decoder = torch.nn.Linear(16, 300, bias=bias)
    source = torch.randn(rows, 16, generator=g, requires_grad=True)
    targets = torch.randint(0, 300, (rows,), generator=g)
    results = []
    for fused in (False, True):
        decoder.zero_grad()
        source.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            hidden = torch.tanh(source)  # not a leaf: the gradient flows on through hidden
            if fused:
                loss, predictions = linear_cross_entropy(hidden, decoder, targets)
            else:
                logits = decoder(hidden)
                loss, predictions = torch.nn.functional.cross_entropy(logits.float(), targets), logits.argmax(-1)
        (3 * loss).backward()
        results.append((loss.detach(), predictions, source.grad.clone(), decoder.weight.grad.clone(),
                        _grad_of(decoder.bias)))
    (loss, predictions, *grads), (fused_loss, fused_predictions, *fused_grads) = results
    assert fused_loss.dtype == torch.float32 and fused_predictions.dtype == torch.long
    assert decoder.weight.grad.dtype == torch.float32
    if not autocast:
        assert torch.allclose(fused_loss, loss, rtol=1e-6)
        assert torch.equal(fused_predictions, predictions)
        for fused_grad, grad in zip(fused_grads[: 2 + bias], grads):
            assert torch.allclose(fused_grad, grad, rtol=1e-5, atol=1e-7)
    else:
        assert torch.allclose(fused_loss, loss, rtol=1e-3)
        assert (fused_predictions == predictions).float().mean() > 0.99
        for fused_grad, grad in zip(fused_grads[: 2 + bias], grads):
            assert (fused_grad - grad).norm() / grad.norm() < 2e-2
    assert (fused_grads[2] is None) == (not bias)


def test_modernbert_trains_on_the_fused_loss_and_evaluates_with_the_stock_forward():
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from hf_pretrain.models.architectures.modernbert import TrainingModernBertForMaskedLM

    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=48, pad_token_id=0, cls_token_id=1, sep_token_id=2,
                              bos_token_id=1, eos_token_id=2, sparse_prediction=True)
    stock, ours = ModernBertForMaskedLM(config), TrainingModernBertForMaskedLM(config)
    ours.load_state_dict(stock.state_dict())
    ids, labels, attention = _batch()
    outputs = []
    for model in (stock, ours):
        model.zero_grad()
        out = model(input_ids=ids, attention_mask=attention, labels=labels)
        out.loss.backward()
        outputs.append((out, model.model.embeddings.tok_embeddings.weight.grad.clone()))
    (stock_out, stock_grad), (ours_out, ours_grad) = outputs
    assert ours_out.logits is None and torch.allclose(ours_out.loss, stock_out.loss, rtol=1e-6)
    assert torch.allclose(ours_grad, stock_grad, rtol=1e-5, atol=1e-7)
    assert torch.equal(ours_out.mlm_predictions, stock_out.logits.argmax(-1))
    with torch.no_grad():
        evaluated = ours.eval()(input_ids=ids, attention_mask=attention, labels=labels)
    assert evaluated.logits.shape == ((labels != IGNORE_INDEX).sum(), 500)


def test_exported_model_is_the_stock_class(tmp_path):
    model = TrainingBertForPreTraining(BertConfig(**CONFIG))
    assert export_model(model, str(tmp_path)) == [str(tmp_path)]
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    assert (tmp_path / "model.safetensors").is_file()
    loaded = BertForPreTraining.from_pretrained(tmp_path)
    assert torch.equal(loaded.cls.predictions.decoder.weight, model.cls.predictions.decoder.weight)


def _packed(docs: list[torch.Tensor], cls_id=2):
    row = torch.cat(docs)[None]
    return row, *document_positions(row, cls_id)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_a_document_packed_with_others_gives_its_outputs_alone(attn_implementation):
    torch.manual_seed(0)
    model = TrainingBertForMaskedLM(BertConfig(**CONFIG, attn_implementation=attn_implementation)).eval()
    g = torch.Generator().manual_seed(1)
    docs = [torch.cat([torch.tensor([2]), torch.randint(5, 500, (n,), generator=g), torch.tensor([3])])
            for n in (9, 4, 13)]
    row, document_ids, position_ids = _packed(docs)
    assert document_ids.tolist() == [[1] * 11 + [2] * 6 + [3] * 15]
    assert position_ids[0, 11:17].tolist() == list(range(6))
    with torch.no_grad():
        packed = model(input_ids=row, document_ids=document_ids, position_ids=position_ids).logits[0]
        crossing = model(input_ids=row).logits[0]
        start = 0
        for doc in docs:
            alone = model(input_ids=doc[None]).logits[0]
            assert torch.allclose(packed[start : start + len(doc)], alone, atol=1e-5)
            start += len(doc)
    # Without isolation the documents do see each other.
    assert not torch.allclose(crossing[11:17], packed[11:17], atol=1e-3)


def test_isolation_with_padding_and_in_electra(tokenizer):
    """Through the collator and both ELECTRA models: a packed document scores as the same document alone, padded."""
    torch.manual_seed(0)
    model = build_electra(ElectraConfig(
        vocab_size=len(tokenizer), pad_token_id=0, embedding_size=32, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )).eval()
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    docs = [[cls, 40, 41, 42, sep], [cls, 50, 51, sep]]
    collator = DataCollatorForMaskedLM(tokenizer, isolate_documents=True)
    # Rows that already carry labels are only padded: nothing is masked or replaced, so clean inputs compare.
    rows = [docs[0] + docs[1], docs[1]]
    batch = collator([{"input_ids": row, "labels": [IGNORE_INDEX] * len(row)} for row in rows])
    assert batch["document_ids"][0].tolist() == [1] * 5 + [2] * 4
    assert batch["position_ids"][1, :4].tolist() == [0, 1, 2, 3]
    assert batch["input_ids"][1, :4].tolist() == docs[1]
    with torch.no_grad():
        logits = model(**batch).discriminator_logits
    assert torch.allclose(logits[0, 5:9], logits[1, :4], atol=1e-5)


def test_isolated_packing_layout_and_boundaries():
    docs = [[[7, 8, 9], [10]], [[11, 12]], [[13, 14, 15, 16, 17]], [[18]]]
    tokenized = Dataset.from_dict({"sentences": docs})
    rows = np.array(pack_sequences(tokenized, cls_id=2, sep_id=3, max_seq_length=6, isolate_documents=True)["input_ids"])
    stream = [2, 7, 8, 9, 10, 3, 2, 11, 12, 3, 2, 13, 14, 15, 16, 17, 3, 2, 18, 3]
    assert rows.shape == (3, 6)  # never longer than the maximum; the last partial row is dropped
    assert rows.ravel().tolist() == stream[:18]
    document_ids, positions = document_positions(torch.as_tensor(rows), cls_token_id=2)
    assert document_ids[1].tolist() == [1, 1, 1, 1, 2, 2] and positions[1].tolist() == [0, 1, 2, 3, 0, 1]
    # Row 2 starts inside document 2: that tail is a document of its own, with positions from 0.
    assert document_ids[2].tolist() == [0, 0, 0, 0, 0, 1] and positions[2].tolist() == [0, 1, 2, 3, 4, 0]


def test_full_sentence_packing_is_unchanged():
    docs = [[[7, 8, 9], [10]], [[11, 12]]]
    rows = pack_sequences(Dataset.from_dict({"sentences": docs}), cls_id=2, sep_id=3, max_seq_length=5)["input_ids"]
    assert rows == [[2, 7, 8, 9, 3], [2, 10, 3, 11, 3]]


def test_objective_weights_weigh_each_loss_and_each_is_logged():
    from hf_pretrain.objectives import make_objective
    from hf_pretrain.objectives.arguments import PretrainingArguments

    objective = make_objective(PretrainingArguments(objective="mlm_nsp", objective_weights="nsp=0.25"), 0)
    assert objective.loss_weights == {"mlm": 1.0, "nsp": 0.25}
    assert objective.card_rows()["loss"] == "mlm + 0.25 x nsp"
    torch.manual_seed(0)
    model = TrainingBertForPreTraining(BertConfig(**CONFIG))
    ids, labels, attention = _batch()
    pairs = torch.tensor([0, 1] * 4)
    model.loss_weights = (1.0, 0.25)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=attention, labels=labels, next_sentence_label=pairs)
    mlm = torch.nn.functional.cross_entropy(out.prediction_logits, labels[labels != IGNORE_INDEX])
    nsp = torch.nn.functional.cross_entropy(out.seq_relationship_logits, pairs)
    assert out.loss.item() == pytest.approx(mlm.item() + 0.25 * nsp.item(), rel=1e-6)
    counter = objective.step_metrics()  # each loss on its own in the logs, unweighted
    counts = counter.count(out, {"labels": labels, "next_sentence_label": pairs})
    logged = counter.summarize(dict(zip(counter.names, counts.tolist())))
    assert logged["mlm_loss"] == pytest.approx(mlm.item(), rel=1e-5)
    assert logged["nsp_loss"] == pytest.approx(nsp.item(), rel=1e-5)
    sop = make_objective(PretrainingArguments(objective="mlm_sop", objective_weights="mlm=1,sop=2"), 0)
    assert "sop_loss" in sop.step_metrics().summarize(dict(zip(counter.names, counts.tolist())))


def test_electra_weights_are_its_lambda_and_the_generator_s_share():
    from hf_pretrain.objectives import argument_classes, make_objective
    from hf_pretrain.objectives.arguments import PretrainingArguments

    electra = make_objective(PretrainingArguments(objective="electra"), 0)
    assert electra.loss_weights == {"generator": 1.0, "discriminator": 50.0}  # the paper's λ, as before
    assert electra.card_rows()["loss"] == "generator MLM + 50 x discriminator"
    weighted = make_objective(PretrainingArguments(objective="electra", objective_weights="generator=2,discriminator=10"), 0)
    model = build_electra(ElectraConfig(**CONFIG), generator_weight=2.0, discriminator_weight=10.0)
    ids, labels, attention = _batch()
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels, attention_mask=attention)
    assert out.loss.item() == pytest.approx(2 * out.generator_loss.item() + 10 * out.discriminator_loss.item(), rel=1e-6)
    assert weighted.loss_weights == {"generator": 2.0, "discriminator": 10.0}
    (electra_arguments,) = [cls(discriminator_weight=20.0) for cls in argument_classes() if cls.__name__ == "ElectraArguments"]
    with pytest.raises(HfPretrainError, match="--discriminator_weight and --objective_weights discriminator=... both"):
        make_objective(PretrainingArguments(objective="electra", objective_weights="discriminator=5"), 0,
                       [electra_arguments])


@pytest.mark.parametrize("objective, weights, message", [
    ("mlm", "mlm=2", "--objective_weights: --objective mlm has one loss (mlm); weights apply to objectives with several"),
    ("mlm_nsp", "mlm=1,sop=1", "--objective_weights: --objective mlm_nsp has no loss named sop; its losses are mlm, nsp"),
    ("mlm_nsp", "mlm=0,nsp=0", "--objective_weights: every weight is 0"),
    ("mlm_nsp", "mlm=-1", "--objective_weights: 'mlm=-1' is not name=weight with a weight >= 0"),
    ("mlm_nsp", "mlm", "--objective_weights: 'mlm' is not name=weight"),
])
def test_bad_objective_weights_are_one_line(objective, weights, message):
    from hf_pretrain.objectives import make_objective
    from hf_pretrain.objectives.arguments import PretrainingArguments

    with pytest.raises(HfPretrainError) as caught:
        make_objective(PretrainingArguments(objective=objective, objective_weights=weights), 0)
    assert str(caught.value).startswith(message)


def test_span_boundaries_on_crafted_spans():
    from hf_pretrain.models.span_boundary import span_boundaries

    #            0  1  2  3  4  5  6  7  8
    masked = [[0, 1, 1, 1, 0, 0, 1, 0, 0],
              [0, 0, 1, 0, 1, 1, 0, 0, 0]]
    left, right, offsets = span_boundaries(torch.tensor(masked, dtype=torch.bool))
    picked = torch.tensor(masked, dtype=torch.bool)
    assert left[picked].tolist() == [0, 0, 0, 5, 1, 3, 3]
    assert right[picked].tolist() == [4, 4, 4, 7, 3, 6, 6]
    assert offsets[picked].tolist() == [0, 1, 2, 0, 0, 0, 1]


def test_span_boundary_loss_is_the_boundary_prediction_and_the_export_drops_its_network(tmp_path):
    from hf_pretrain.models.heads import with_training_modules
    from hf_pretrain.models.span_boundary import SpanBoundaryTraining
    from hf_pretrain.objectives.metrics import SpanBoundaryMetrics

    torch.manual_seed(0)
    model = with_training_modules(SpanBoundaryTraining, TrainingBertForMaskedLM)(BertConfig(**CONFIG)).eval()
    model.loss_weights = (1.0, 0.5)
    ids = torch.randint(5, 500, (2, 9))
    labels = torch.full((2, 9), IGNORE_INDEX)
    labels[0, 2:4] = ids[0, 2:4]  # one span: boundaries 1 and 4
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
        hidden = model.bert(ids).last_hidden_state[0]
        boundary = model.sbo_head(hidden[[1, 1]], hidden[[4, 4]], torch.tensor([0, 1]))
        expected = torch.nn.functional.cross_entropy(model.cls(boundary), ids[0, 2:4])
    assert out.sbo_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(out.mlm_loss.item() + 0.5 * expected.item(), rel=1e-5)
    counter = SpanBoundaryMetrics()
    logged = counter.summarize(dict(zip(counter.names, counter.count(out, {"labels": labels}).tolist())))
    assert logged["sbo_loss"] == pytest.approx(expected.item(), rel=1e-5) and "mlm_loss" in logged

    model.save_pretrained(tmp_path / "checkpoint")  # a training checkpoint keeps the SBO network...
    export_model(model, str(tmp_path / "export"))  # ...the exported model is the stock class without it
    from safetensors import safe_open

    keys = {name: set(safe_open(str(tmp_path / name / "model.safetensors"), "pt").keys()) for name in ("checkpoint", "export")}
    assert any(k.startswith("sbo_head.") for k in keys["checkpoint"])
    assert not any(k.startswith("sbo_head.") for k in keys["export"])
    reloaded = BertForMaskedLM.from_pretrained(tmp_path / "export")
    assert json.loads((tmp_path / "export" / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    assert torch.equal(reloaded.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)


def test_token_match_loss_scores_the_unmasked_tokens_and_the_export_drops_its_head(tmp_path):
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from hf_pretrain.models.architectures.modernbert import TrainingModernBertForMaskedLM
    from hf_pretrain.models.heads import with_training_modules
    from hf_pretrain.models.token_match import TokenMatchTraining
    from hf_pretrain.objectives.metrics import TokenMatchMetrics

    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=48, pad_token_id=0, cls_token_id=1, sep_token_id=2,
                              bos_token_id=1, eos_token_id=2)
    model = with_training_modules(TokenMatchTraining, TrainingModernBertForMaskedLM)(config).eval()
    model.loss_weights = (1.0, 0.5)
    ids = torch.randint(5, 500, (2, 9))
    labels = torch.full((2, 9), IGNORE_INDEX)
    labels[0, 2] = ids[0, 2]
    match_labels = torch.randint(0, 2, (2, 9))
    match_labels[:, 0] = IGNORE_INDEX
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels, match_labels=match_labels)
        hidden = model.model(ids).last_hidden_state
        scored = match_labels != IGNORE_INDEX
        scored[0, 2] = False  # the masked token is not scored: its identity is hidden from the input
        logits = model.match_head(hidden[scored]).squeeze(-1)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, match_labels[scored].float())
        mlm = torch.nn.functional.cross_entropy(model.decoder(model.head(hidden[0, 2:3])), ids[0, 2:3])
    assert out.match_total.item() == 15
    assert out.match_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.mlm_loss.item() == pytest.approx(mlm.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(mlm.item() + 0.5 * expected.item(), rel=1e-5)
    counter = TokenMatchMetrics()
    logged = counter.summarize(dict(zip(counter.names, counter.count(out, {"labels": labels}).tolist())))
    assert logged["match_loss"] == pytest.approx(expected.item(), rel=1e-5)
    assert logged["match_accuracy"] == pytest.approx(((logits > 0) == match_labels[scored].bool()).float().mean().item())

    model.save_pretrained(tmp_path / "checkpoint")
    export_model(model, str(tmp_path / "export"))
    from safetensors import safe_open

    keys = {name: set(safe_open(str(tmp_path / name / "model.safetensors"), "pt").keys()) for name in ("checkpoint", "export")}
    assert keys["checkpoint"] - keys["export"] == {"match_head.weight", "match_head.bias"}
    assert model.num_parameters() - exported_parameters(model) == 33
    reloaded = ModernBertForMaskedLM.from_pretrained(tmp_path / "export")
    assert json.loads((tmp_path / "export" / "config.json").read_text())["architectures"] == ["ModernBertForMaskedLM"]
    assert torch.equal(reloaded.model.embeddings.tok_embeddings.weight, model.model.embeddings.tok_embeddings.weight)


def test_a_fresh_modernbert_of_a_token_level_objective_is_saved_for_mean_pooling_classifiers():
    # Masked LM trains every token's output and no head on [CLS]: a fresh ModernBERT is saved with
    # classifier_pooling "mean" for the sequence classifiers fine-tuned from it. What a user chose is kept: the
    # pooling --config_overrides sets, and a continued checkpoint's own; BERT has no such field and gets none.
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from hf_pretrain.models.arguments import ModelArguments
    from hf_pretrain.objectives.mlm import pool_token_mean

    def saved_pooling(config_pooling: str = "cls", **model_args) -> str:
        config = ModernBertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=48, pad_token_id=0, classifier_pooling=config_pooling)
        model_args.setdefault("model_type", None if "model_name_or_path" in model_args else "modernbert")
        model = pool_token_mean(ModernBertForMaskedLM(config), ModelArguments(**model_args))
        return model.config.classifier_pooling

    assert saved_pooling() == "mean"
    assert saved_pooling(config_overrides="classifier_pooling=cls") == "cls"
    assert saved_pooling(config_overrides="attention_dropout=0.1") == "mean"
    assert saved_pooling(model_name_or_path="some/checkpoint") == "cls"
    bert = pool_token_mean(BertForMaskedLM(BertConfig(**CONFIG)), ModelArguments(model_type="bert"))
    assert not hasattr(bert.config, "classifier_pooling")
