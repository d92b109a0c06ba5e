"""Data files bundled with the package (persona prompts, tiny corpora)."""
