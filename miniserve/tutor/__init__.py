"""The tutor: the workload the server serves. Tokenizer, Mini-GPT with its KV cache, generation, the guarded
grammar agent with its lexicon and SQLite learner memory, and the corpus and training that built the weights.

May import torch; never imports `miniserve.server` or `miniserve.lab` (it knows nothing of HTTP or batching).
The model card, MODEL.md, sits beside the weights it describes.
"""
