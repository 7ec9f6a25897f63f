"""The training layer: dual-granularity losses (``losses``), DGCL schedules (``curriculum``), the
trainer loop with its learning-rate schedule and resume state (``trainer``)."""
