"""One spirals run as an ordinary training loop on an ``nn.Module``: the reference that the batched
trainer (:func:`~localmixup.paper.spirals.trainer.train_many`) is tested against."""

from __future__ import annotations

import torch

from localmixup.loss import mixup_loss
from localmixup.mixing import LocalMixup, MixedBatch
from localmixup.paper.spirals.config import ManyRunsConfig
from localmixup.paper.spirals.data import Split
from localmixup.paper.spirals.networks import init_mlps
from localmixup.paper.spirals.trainer import check_split, error_pct, loss_batch, normalize
from localmixup.paper.training.seeding import run_streams


def train_single(
    split: Split,
    seed: int,
    config: ManyRunsConfig,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[float, torch.nn.Sequential]:
    """Reference: one run as an ordinary training loop on an ``nn.Module``, with
    :class:`~localmixup.mixing.LocalMixup`, :func:`~localmixup.loss.mixup_loss` and ``torch.optim.Adam``.

    Same protocol and same random numbers as run ``seed`` of :func:`~localmixup.paper.spirals.trainer.train_many`.
    Returns (final test error in percent, trained model: logits, without the softmax of
    ``output="softmax"``, which is applied in the loss).
    """
    if not isinstance(config, ManyRunsConfig):
        raise ValueError(f"config must be a ManyRunsConfig, got {type(config).__name__}")
    check_split(split)
    device = torch.device(device) if device is not None else torch.device("cpu")
    x_train, y_train = split.x_train.to(device, dtype), split.y_train.to(device)
    x_test, y_test = split.x_test.to(device, dtype), split.y_test.to(device)
    n, classes = x_train.shape[0], int(max(split.y_train.max(), split.y_test.max())) + 1
    model = init_mlps([seed], config.sizes(x_train.shape[1], classes), dtype=dtype, device=device)[0]
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    order = run_streams(seed, "order", device)
    mixer = LocalMixup("threshold", eps=config.eps, alpha=config.alpha, pairing=config.pairing,
                       generator=run_streams(seed, "mix", device), validate=False)
    for _ in range(config.epochs):
        index = order.permutation(n)
        for first in range(0, n, config.batch_size):
            xb, yb = x_train[index[first : first + config.batch_size]], y_train[index[first : first + config.batch_size]]
            if config.mixing:
                batch = mixer.apply(mixer.sample(xb), xb, yb)
            else:
                batch = MixedBatch(xb, yb, yb, 1.0, torch.ones(yb.shape, device=device))
            output = model(batch.x)
            if config.output == "softmax":
                output = output.softmax(dim=-1)
            loss = mixup_loss(output, loss_batch(batch, config), normalize=normalize(config), validate=False)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return error_pct(model(x_test).argmax(dim=1), y_test), model
