"""GLUE tasks in their distributed formats, offline metrics, and fine-tuning with the stock Trainer."""
