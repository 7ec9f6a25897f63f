"""The evaluation layer: retrieval, zero-shot classification and semantic-localization metrics and
their runners, and the four-task entry point (``evaluate``). It takes an explicit model or model
source; it never trains and never changes the environment.

Taught in: Long-text cross-modal retrieval (notebooks/04-long-text-retrieval.ipynb)
"""
