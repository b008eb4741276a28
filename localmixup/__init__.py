"""Local Mixup (Baena, Drumetz, Gripon, 2022): Mixup whose pairs are weighted by a locality graph.

Typical use in a training loop::

    mix = LocalMixup("exp", alpha=1e-3)
    batch = mix(x, y)
    loss = mixup_loss(model(batch.x), batch)

This top level is the method and needs torch only. The paper's experiments live in
:mod:`localmixup.paper` (extra ``paper``), the one-dimensional theory in
:mod:`localmixup.theory` (extra ``theory``) and the AdaMixup baseline in
:mod:`localmixup.baselines`.
"""

__version__ = "0.1.0"

from localmixup.distances import pairwise_distances
from localmixup.graphs import GRAPHS, locality_weights
from localmixup.intrusion import intrusion_rate
from localmixup.loss import mixup_loss, per_sample_cross_entropy
from localmixup.mixing import PAIRINGS, LocalMixup, MixedBatch

__all__ = [
    "GRAPHS",
    "PAIRINGS",
    "LocalMixup",
    "MixedBatch",
    "intrusion_rate",
    "locality_weights",
    "mixup_loss",
    "pairwise_distances",
    "per_sample_cross_entropy",
]
