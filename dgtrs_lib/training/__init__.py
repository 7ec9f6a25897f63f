"""The training layer: dual-granularity losses (``losses``), DGCL schedules (``curriculum``), the
hyper-parameters (``config``), Long-CLIP's learning-rate schedule (``lr``), process groups and
feature gathers (``distributed``), the loop with its resume state (``trainer``) and its per-step
log with the training-curve figure (``metrics_log``).

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
