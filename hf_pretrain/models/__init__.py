"""Training-time model classes (sparse prediction, document isolation) and model loading checks."""
