"""miniserve: a small, real inference server for a grammar-tutor Mini-GPT."""

__version__ = "0.1.0"
