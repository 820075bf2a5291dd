"""The glue between objectives and the stock Trainer: a small Trainer subclass, callbacks, checkpoints and their
resume (one owner: ``resume.CheckpointManager``), the data steps, and the pretraining run around ``Trainer.train()``."""
