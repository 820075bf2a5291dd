"""Values shared by every layer."""

IGNORE_INDEX = -100  # the label value torch's cross-entropy (and every HF model) skips

# The file a live run holds locked in its --output_dir (hf_pretrain.runtime.lock); never pushed to the Hub.
OUTPUT_DIR_LOCK = ".hf_pretrain.lock"

# The marker files that say whose a folder is: a pretraining run's --output_dir (the recipes write into it again,
# resuming) and a `hf-pretrain prepare` output (a rerun may replace it). A folder without either is the user's.
RUN_MARKER = ".hf_pretrain_run"
PREPARATION_MARKER = ".hf_pretrain_preparation"
