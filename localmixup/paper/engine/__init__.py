"""Training: configurations, the optimiser and step, stacked runs, many small runs, checkpoints."""
