"""The model layer: KPS (``kps``), the tokenizer (``tokenizer``), the model shapes (``configs``), the
long-text CLIP on open_clip (``longclip``), the official checkpoint format (``checkpoint``), image
preprocessing (``transforms``) and the one registry of model sources (``sources``).

Nothing is imported here, so ``dgtrs_lib.model.configs`` stays torch-free; the public names are
re-exported by ``dgtrs_lib`` itself.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
