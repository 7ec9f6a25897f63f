"""The experiments layer: the miniature pipeline (``pipeline``: stage orchestration) and the ablation
study of the paper's claims (``ablations``)."""
