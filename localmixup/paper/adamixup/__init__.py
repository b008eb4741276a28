"""Methods the paper compares Local Mixup with: AdaMixup (Guo, Mao, Zhang, 2019)."""

from localmixup.paper.adamixup.method import AdaMixup, PolicyDraw, adamixup_step, split_model

__all__ = ["AdaMixup", "PolicyDraw", "adamixup_step", "split_model"]
