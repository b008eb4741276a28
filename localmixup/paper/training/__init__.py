"""Training: configurations, seeding, optimiser, step, evaluation, records, stacked runs, the epoch loop,
checkpoints, step costs (images); many small runs (spirals)."""
