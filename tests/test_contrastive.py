"""Contrastive sentence embeddings (SimCSE): the InfoNCE loss by hand, the two forms' batches, the recipe continued
from a masked-LM checkpoint, and the result in plain transformers and sentence-transformers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig

from hf_pretrain.models.contrastive import contrastive_training_class, info_nce
from hf_pretrain.models.export import stock_class
from hf_pretrain.objectives.collators import DataCollatorForContrastive

from .conftest import DEBUG, ROOT, run_recipe

pytestmark = pytest.mark.end_to_end

TOKENIZER = ROOT / "tests" / "golden" / "debug_tokenizer"
PRETRAIN = "recipes/pretrain_bert.py"


def test_info_nce_matches_the_hand_computed_value():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    candidates = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    loss, logits = info_nce(anchors, candidates, temperature=0.5)
    # cosines: anchor 0 -> (1, 1/sqrt 2), anchor 1 -> (0, 1/sqrt 2); over tau = 0.5
    c = 1 / math.sqrt(2)
    assert logits.flatten().tolist() == pytest.approx([2.0, 2 * c, 0.0, 2 * c])
    expected = (-(2.0 - math.log(math.exp(2.0) + math.exp(2 * c)))
                - (2 * c - math.log(math.exp(0.0) + math.exp(2 * c)))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def _model(pooling="mean"):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=2000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    model = contrastive_training_class(config)(config)
    model.pooling = pooling
    return model


def test_unsupervised_batches_pair_each_sentence_with_itself_and_supervised_ones_add_hard_negatives():
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    collator = DataCollatorForContrastive(tokenizer)
    rows = [{"input_ids": [2, 10, 11, 3], "sequence_id": 0}, {"input_ids": [2, 12, 3], "sequence_id": 1}]
    batch = collator(rows)
    assert batch["input_ids"].tolist() == [[2, 10, 11, 3], [2, 12, 3, tokenizer.pad_token_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]] and "pair_input_ids" not in batch

    model = _model().eval()  # no dropout: both copies of a sentence are the same vector
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert out.logits.shape == (2, 2) and torch.diagonal(out.logits).tolist() == pytest.approx([20.0, 20.0])
    model.train()  # dropout: two different views of each sentence
    assert torch.diagonal(model(**{k: v for k, v in batch.items() if k != "sequence_id"}).logits).max() < 20.0

    triples = [{"input_ids": [2, 10, 3], "pair_input_ids": [2, 11, 3], "negative_input_ids": [2, 12, 13, 3]}] * 3
    batch = collator(triples)
    assert set(batch) == {"input_ids", "attention_mask", "pair_input_ids", "pair_attention_mask",
                          "negative_input_ids", "negative_attention_mask"}
    with torch.no_grad():
        out = model.eval()(**batch)
    assert out.logits.shape == (3, 6)  # each anchor against every positive and every hard negative


@pytest.fixture(scope="module")
def masked_lm_checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlm")
    result = run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm", "--max_steps", "10", "--eval_strategy",
                        "no", "--save_strategy", "no", "--tokenizer_name", str(TOKENIZER), "--output_dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:]
    return out


def test_unsupervised_simcse_continues_a_checkpoint_and_loads_in_plain_transformers(masked_lm_checkpoint, tmp_path):
    result = run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "contrastive", "--pooling", "mean",
                        "--model_name_or_path", str(masked_lm_checkpoint), "--max_steps", "20", "--eval_steps", "20",
                        "--logging_steps", "5", "--save_strategy", "no", "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    losses = [h["contrastive_loss"] for h in history if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]  # the two views of a sentence are found among the batch's 16
    assert [h["eval_contrastive_accuracy"] for h in history if "eval_loss" in h][-1] > 0.9
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertModel"]
    pooling = json.loads((tmp_path / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert "contrastive sentence embeddings (SimCSE)" in (tmp_path / "README.md").read_text()
    probe = (
        "import sys; sys.modules['hf_pretrain'] = None\n"
        "from transformers import AutoModel\n"
        f"model = AutoModel.from_pretrained({str(tmp_path)!r})\n"
        "assert type(model).__name__ == 'BertModel', type(model)\n"
    )
    reload = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=Path("/"))
    assert reload.returncode == 0, reload.stderr[-3000:]

    sentence_transformers = pytest.importorskip("sentence_transformers")
    encoder = sentence_transformers.SentenceTransformer(str(tmp_path), device="cpu")
    vectors = encoder.encode(["the function returns a list", "a list is what the function returns"])
    assert vectors.shape == (2, 64)
    # The same vectors as mean pooling over our own model's tokens: the pooling travelled with the checkpoint.
    from hf_pretrain.glue.similarity import embed
    from transformers import AutoModel

    ours = embed(AutoModel.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path),
                 ["the function returns a list"], pooling="mean")
    assert ours[0] == pytest.approx(vectors[0], abs=1e-4)


def test_supervised_pairs_and_their_errors(tmp_path):
    pairs = tmp_path / "nli.jsonl"
    lines = [{"sent0": f"the module {i} reads a file", "sent1": f"module {i} opens and reads files",
              "hard_neg": f"the module {i} never touches files"} for i in range(40)]
    pairs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "contrastive", "--pairs_file", str(pairs),
                        "--pooling", "mean", "--max_steps", "4", "--eval_strategy", "no", "--save_strategy", "no",
                        "--tokenizer_name", str(TOKENIZER), "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "supervised pairs from" in (tmp_path / "out" / "README.md").read_text()

    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.objectives.contrastive import read_pairs

    broken = tmp_path / "broken.tsv"
    broken.write_text("sentence1\tsentence2\na cat\ta feline\nonly one side\t\n")
    with pytest.raises(HfPretrainError) as refused:
        read_pairs(str(broken))
    assert str(refused.value) == f"{broken}:3: no 'sentence2' (or 'sent1') text in this row"
    assert [p["sentence2"] for p in read_pairs(str(pairs))][:1] == ["module 0 opens and reads files"]


def test_similarity_spearman_ranks_pairs_by_cosine(tmp_path):
    from hf_pretrain.glue.similarity import similarity_spearman

    from .test_glue import FIXTURES, write_task

    # Four pairs of a sentence and itself (gold 5) and four of unrelated sentences (gold 0): any encoder gives the
    # identical pairs cosine 1 (up to rounding), the top four ranks. Rho is then that of the gold ranks (6.5 x 4,
    # 2.5 x 4) against (5, 6, 7, 8, then 1-4 for the others): 32 / sqrt(32 x 42) = 0.873 if no cosines tie, up to
    # 32 / sqrt(32 x 37) = 0.930 if the four identical ones tie exactly; anything else ranks a pair wrongly.
    header, _ = FIXTURES["STS-B"]
    texts = ["the parser reads a file", "a socket closes", "numbers are added up", "the thread waits for a lock"]
    others = ["colour names are listed", "the date is printed", "errors are raised early", "a queue is emptied"]
    rows = [f"{i}\tmain\tf\t2012\t{i}\tnone\tnone\t{a}\t{a}\t5.000" for i, a in enumerate(texts)]
    rows += [f"{i + 4}\tmain\tf\t2012\t{i}\tnone\tnone\t{a}\t{b}\t0.000" for i, (a, b) in enumerate(zip(texts, others))]
    write_task(tmp_path, "STS-B", header, rows)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    model = stock_class(_model())(_model().config)  # a plain BertModel, as `hf-pretrain similarity` loads one
    rho = similarity_spearman(model, tokenizer, "stsb", str(tmp_path), pooling="mean")
    assert 32 / math.sqrt(32 * 42) - 1e-9 <= rho <= 32 / math.sqrt(32 * 37) + 1e-9


def test_similarity_from_scratch_scores_the_checkpoints_architecture_randomly_initialized(tmp_path):
    from transformers import AutoModel, set_seed

    from hf_pretrain.cli import similarity
    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.glue.similarity import similarity_spearman

    from .test_glue import FIXTURES, write_task

    header, _ = FIXTURES["STS-B"]
    words = ["the parser reads a file", "a socket closes", "numbers are added up", "the thread waits for a lock",
             "colour names are listed", "the date is printed", "errors are raised early", "a queue is emptied"]
    rows = [f"{i}\tmain\tf\t2012\t{i}\tnone\tnone\t{a}\t{b}\t{(i * 7) % 6}.000"
            for i, (a, b) in enumerate(zip(words, words[3:] + words[:3]))]
    write_task(tmp_path / "glue", "STS-B", header, rows)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    set_seed(123)
    trained = stock_class(_model())(_model().config)  # stands in for a checkpoint: other weights than seed 0's
    trained.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    glue = str(tmp_path / "glue")

    def score(*flags):
        line = similarity([str(tmp_path / "model"), "--glue_dir", glue, "--pooling", "mean", *flags])
        return line, float(line.rsplit(": ", 1)[1])

    line, checkpoint = score()
    assert line.startswith("stsb cosine Spearman (mean pooling, pretrained): ")
    assert checkpoint == pytest.approx(similarity_spearman(trained, tokenizer, "stsb", glue, "mean"), abs=1e-4)
    line, random_init = score("--from_scratch")
    assert line.startswith("stsb cosine Spearman (mean pooling, random init, seed 0): ")
    set_seed(0)
    by_hand = AutoModel.from_config(trained.config)  # the same architecture under seed 0
    assert random_init == pytest.approx(similarity_spearman(by_hand, tokenizer, "stsb", glue, "mean"), abs=1e-4)
    assert score("--from_scratch")[1] == random_init  # the seed decides the weights
    assert random_init != checkpoint  # 0.036 against 0.289 on these eight pairs
    others = [score("--from_scratch", "--seed", str(seed))[1] for seed in (1, 2, 3)]
    assert len({random_init, *others}) == 4  # 0.072, 0.169, 0.313: each seed its own weights
    with pytest.raises(HfPretrainError, match="--seed draws the weights of --from_scratch"):
        score("--seed", "1")  # it would change nothing: refused rather than ignored


def test_dropout_is_the_augmentation_even_on_encoders_that_ship_without_it():
    from hf_pretrain.models.arguments import ModelArguments
    from hf_pretrain.models.contrastive import build_contrastive_model

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    args = ModelArguments(model_type="modernbert", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=48)
    model = build_contrastive_model(args, tokenizer, 64, temperature=0.05, pooling="cls")
    assert model.config.mlp_dropout == 0.0  # ModernBERT's own: none
    rates = {module.p for module in model.modules() if isinstance(module, torch.nn.Dropout)}
    assert rates == {0.1}
    ids = torch.tensor([[tokenizer.cls_token_id, 40, 41, 42, tokenizer.sep_token_id]] * 2)
    out = model.train()(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert torch.diagonal(out.logits).max() < 20.0  # two different views of the same sentence
    untouched = build_contrastive_model(args, tokenizer, 64, temperature=0.05, pooling="cls", dropout=None)
    assert {module.p for module in untouched.modules() if isinstance(module, torch.nn.Dropout)} == {0.0}
