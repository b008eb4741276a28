"""Figure 3: the two-spirals toy (data, batched trainer and its compiled kernel, sweep, readings)."""
