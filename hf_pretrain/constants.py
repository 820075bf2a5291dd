"""Values shared by every layer."""

IGNORE_INDEX = -100  # the label value torch's cross-entropy (and every HF model) skips
