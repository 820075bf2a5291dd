"""The glue between objectives and the stock Trainer: a small Trainer subclass, callbacks, checkpoints."""
