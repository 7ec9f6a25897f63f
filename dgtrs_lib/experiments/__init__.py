"""The experiments layer: the miniature pipeline (``pipeline``: stage orchestration), its run records
(``records``: what each stage produced, one object and one file) and the ablation study of the
paper's claims (``ablations``).

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
