"""Model cards and pushing folders to the Hugging Face Hub."""
