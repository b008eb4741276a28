"""Local Mixup (Baena, Drumetz, Gripon, 2022): Mixup whose pairs are weighted by a locality graph.

Typical use in a training loop::

    mix = LocalMixup("exp", decay=auto_decay(x_train, y_train), seed=0)  # the rate from the data
    mix.set_epoch(epoch)                         # each epoch: fresh draws in every DataLoader worker and rank
    batch = mix(x, y)                            # or: draw = mix.sample(x); batch = mix.apply(draw, x, y)
    loss = mixup_loss(model(batch.x), batch)

``auto_decay`` is ln 2 / the median nearest-other-class distance (the paper leaves the rate as future
work); the rate is in inverse units of the input distances.

R independent runs at once (inputs (R, B, ...), one loss per run)::

    mix = LocalMixup("threshold", eps=1.0, generator=Streams(seeds))   # run r draws from seeds[r] only
    batch = mix(x, y)                            # x (R, B, ...), y (R, B)
    loss = mixup_loss(models(batch.x), batch)    # (R,): logits (R, B, C)

This top level is the method and needs torch only. The paper's experiments live in
:mod:`localmixup.paper` (extra ``paper``), the one-dimensional theory in
:mod:`localmixup.theory` (extra ``theory``) and the AdaMixup baseline in
:mod:`localmixup.paper.adamixup`.
"""

__version__ = "0.1.0"

from localmixup.decay import auto_decay
from localmixup.distances import paired_distances, pairwise_distances
from localmixup.graphs import GRAPHS, locality_weights, pair_weights
from localmixup.intrusion import intrusion_rate
from localmixup.loss import mixup_loss, per_sample_cross_entropy
from localmixup.mixing import PAIRINGS, LocalityScaleWarning, LocalMixup, MixDraw, MixedBatch, SoftMixedBatch, apply_draw
from localmixup.rng import Streams, derive_seed

__all__ = [
    "GRAPHS",
    "PAIRINGS",
    "LocalMixup",
    "LocalityScaleWarning",
    "MixDraw",
    "MixedBatch",
    "SoftMixedBatch",
    "Streams",
    "apply_draw",
    "auto_decay",
    "derive_seed",
    "intrusion_rate",
    "locality_weights",
    "mixup_loss",
    "pair_weights",
    "paired_distances",
    "pairwise_distances",
    "per_sample_cross_entropy",
]
