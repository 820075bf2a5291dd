"""Values shared by every layer."""

IGNORE_INDEX = -100  # the label value torch's cross-entropy (and every HF model) skips

# The file a live run holds locked in its --output_dir (hf_pretrain.training.lock); never pushed to the Hub.
OUTPUT_DIR_LOCK = ".hf_pretrain.lock"
