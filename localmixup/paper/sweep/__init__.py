"""Sweeps: resumable sets of runs, one atomic record per run (image runs, spirals), local or on Ray."""
