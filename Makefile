# hf_pretrain: `make install`, then `make pretrain` (offline, embedded corpus), `make finetune-glue`, `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ACCELERATE := $(VENV)/bin/accelerate

CONFIG ?= recipes/configs/debug.yaml
CORPUS ?= ../shared/data/wikipedia
PREPARED ?= outputs/prepared
CKPT ?= outputs/debug
TASK ?= mrpc
GLUE_DIR ?= ../shared/data/glue
SEEDS ?= 1
ARGS ?=

.PHONY: install prepare pretrain finetune-glue test docs bench bench-quality bench-glue bench-objectives bench-clm bench-adaptation bench-semantic-dedup bench-prepare-tasks faults clean

install:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"

prepare:
	$(VENV)/bin/hf-pretrain prepare --train_file $(CORPUS) --output_dir $(PREPARED) $(ARGS)

pretrain:
	$(ACCELERATE) launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
		recipes/pretrain_bert.py --config $(CONFIG) $(ARGS)

finetune-glue:
	$(PY) recipes/finetune_glue.py --config recipes/configs/glue.yaml --model_name_or_path $(CKPT) \
		--task_name $(TASK) --glue_dir $(GLUE_DIR) --output_dir $(CKPT)/glue-$(TASK) --seeds $(SEEDS) $(ARGS)

test:
	$(PY) -m pytest -q -n 2 --dist loadfile --durations 10  # two workers, a test file each (its module fixtures built once)

clean:
	rm -rf outputs

bench:
	$(PY) benchmarks/bench_collators.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_prepare.py
	$(PY) benchmarks/bench_prepare_memory.py
	$(PY) benchmarks/bench_fused_loss.py

# Quality per compute (about 2 hours, both cores): the budget preset vs the run_mlm.py way, 30 minutes each side
# by side, then the GLUE table (bench-glue) of our checkpoint and of random init. Not part of `make bench` or CI.
bench-quality:
	$(PY) benchmarks/bench_quality.py --train_file $(CORPUS) --glue_dir $(GLUE_DIR) $(ARGS)

# The GLUE table of one or more checkpoints (MRPC, SST-2 on 4,000 examples, STS-B; 3 seeds; fine-tuned and linearly
# probed, each cell at its best of two rates; random init of the same architecture beside):
#   make bench-glue CKPT="outputs/budget outputs/budget_match"
bench-glue:
	$(PY) benchmarks/bench_glue.py --checkpoint $(CKPT) --glue_dir $(GLUE_DIR) $(ARGS)

bench-objectives:  # every objective's tokens/s; SOP and SBO vs MLM, 8 minutes each (about 1 hour)
	$(PY) benchmarks/bench_objectives.py --train_file $(CORPUS) --glue_dir $(GLUE_DIR) $(ARGS)

# Causal LM per compute (about 35 minutes, both cores): the clm_budget preset vs the run_clm.py way, 30 minutes each
# side by side, perplexity at 4, 8, 15 and 30 minutes; then the cost of document isolation in tokens/s.
bench-clm:
	$(PY) benchmarks/bench_clm.py --train_file $(CORPUS) $(ARGS)

# Semantic deduplication vs MinHash on Wikipedia with MRPC's train pairs injected (recall of paraphrase pairs, false
# removals of non-paraphrase ones, raw and whitened, at several thresholds), then `prepare --semantic_dedup` itself,
# the embedding rate and the peak memory at 1x and 4x the corpus (about 25 minutes): make bench-semantic-dedup CKPT=outputs/budget
bench-semantic-dedup:
	$(PY) benchmarks/bench_semantic_dedup.py --semantic_model $(CKPT) $(ARGS)

bench-adaptation:  # full fine-tuning, linear probe and LoRA on MRPC, pretrained vs random init, 3 seeds
	$(PY) benchmarks/bench_adaptation.py --checkpoint $(CKPT) --glue_dir $(GLUE_DIR) $(ARGS)

# Fault injection: SIGKILL and resume, crashes while saving, non-finite losses, hostile input, security; one line
# per case (these tests are part of `make test` too).
# `prepare --tasks N` through datatrove (about 7 minutes): documents/s against one process, memory per task at 1x and
# 4x the corpus, and its deduplication against datatrove's MinHash stages.
bench-prepare-tasks:
	$(PY) benchmarks/bench_prepare_tasks.py $(ARGS)

faults:  # every reliability case, wherever its test lives (marked @pytest.mark.faults)
	$(PY) -m pytest -m faults -v --no-header -p no:cacheprovider

docs:  # the documentation site from docs/ (the flag reference generated), offline, into site/
	$(VENV)/bin/mkdocs build --strict
