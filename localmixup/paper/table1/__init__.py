"""Table 1: the image benchmarks (baseline, Mixup, Local Mixup), its size study and its readings."""
