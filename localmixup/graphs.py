"""Locality graphs of the paper (Section 4.1): the weight W[i, j] of each pair."""

from __future__ import annotations

import torch

from localmixup.distances import paired_distances, pairwise_distances
from localmixup.checks import check_choice, check_integer, check_partner, check_points, check_real

GRAPHS = ("knn", "threshold", "exp", "none")
_PARAMETER_OF = {"knn": "k", "threshold": "eps", "exp": "decay", "none": None}


def locality_weights(
    x: torch.Tensor,
    graph: str,
    *,
    k: int | None = None,
    eps: float | None = None,
    decay: float | None = None,
    distances: torch.Tensor | None = None,
    batched: bool = False,
    validate: bool = True,
) -> torch.Tensor:
    """Weight matrix W of a locality graph on the samples of a batch.

    Args:
        x: tensor of shape (B, ...).
        graph: ``"knn"`` (W[i, j] = 1 if j is i itself or among the k nearest
            neighbours of i, else 0; not symmetric), ``"threshold"``
            (W[i, j] = 1 if D[i, j] <= eps), ``"exp"`` (W[i, j] = exp(-decay D[i, j]))
            or ``"none"`` (all ones: classical Mixup).
        k: number of neighbours, integer >= 0; values above B - 1 keep every pair.
        eps: distance threshold, in [0, inf].
        decay: decay rate of the exponential graph, in [0, inf).
        distances: optional precomputed (B, B) distances (else ``pairwise_distances(x)``),
            entries >= 0 (inf allowed: weight 0); (R, B, B) when ``batched``.
        batched: x has shape (R, B, ...), a stack of R independent batches (for
            instance R runs trained at once); one weight matrix per batch.
        validate: check the values (finite x, distances >= 0 and not NaN); the check reads
            them on the host, so a tuned GPU loop switches it off. Shapes are always checked.

    Returns:
        float32 tensor of shape (B, B) (or (R, B, B) when ``batched``) with entries
        in [0, 1] and ones on the diagonal.
        k = 0 and eps = 0 (distinct points) give the identity (no mixing);
        k >= B - 1, eps = inf and decay = 0 give all ones (Mixup).
    """
    graph, k, eps, decay = _parameters(graph, k, eps, decay)
    lead = check_points(x, batched)[:-1]
    size = x.shape[len(lead)]
    if graph == "none":
        return torch.ones(*lead, size, size, device=x.device)

    d = pairwise_distances(x, batched=batched, validate=validate) if distances is None else _checked(distances, (*lead, size, size), validate)
    if graph != "knn":
        return _weight_of_distance(d, graph, eps, decay)
    # knn: self first (distance 0 sorted to the front with a -1 sentinel), ties broken by index.
    d = d.clone()
    d.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
    nearest = d.argsort(dim=-1, stable=True)[..., : min(k, size - 1) + 1]
    return torch.zeros(*lead, size, size, device=x.device).scatter_(-1, nearest, 1.0)


def pair_weights(
    x: torch.Tensor,
    partner: torch.Tensor,
    graph: str,
    *,
    k: int | None = None,
    eps: float | None = None,
    decay: float | None = None,
    batched: bool = False,
    validate: bool = True,
) -> torch.Tensor:
    """The weight of each sample's pair with its partner: ``W[i, partner[i]]`` of
    :func:`locality_weights`, equal to it bit for bit.

    Args:
        x: tensor of shape (B, ...) ((R, B, ...) with ``batched``).
        partner: integer tensor (B,) ((R, B) with ``batched``) of indices in [0, B).
        graph, k, eps, decay, batched, validate: as in :func:`locality_weights`.

    Returns:
        float32 tensor (B,) ((R, B) with ``batched``) with entries in [0, 1].

    Cost. The threshold and exponential graphs read only the B pair distances
    (:func:`~localmixup.distances.paired_distances`), so Local Mixup with permutation pairing
    costs what Mixup does. With at most :data:`~localmixup.distances.DIRECT_MAX_DIM` features per
    sample these are the full matrix's values: the threshold weights are then those of
    :func:`locality_weights` bit for bit, the exponential ones within an ulp (``exp`` is
    vectorised differently over a matrix and over a row); above, the distances agree within the
    Gram matrix's rounding (see ``paired_distances``). kNN ranks whole rows: it builds the
    whole graph and reads it.
    """
    graph, k, eps, decay = _parameters(graph, k, eps, decay)
    lead = check_points(x, batched)
    if graph in ("threshold", "exp"):  # paired_distances checks x and partner
        return _weight_of_distance(paired_distances(x, partner, batched=batched, validate=validate), graph, eps, decay)
    partner = check_partner(partner, lead, validate)
    if graph == "none":
        return torch.ones(lead, device=x.device)
    w = locality_weights(x, graph, k=k, eps=eps, decay=decay, batched=batched, validate=validate)
    return w.gather(-1, partner[..., None]).squeeze(-1)


def _parameters(graph: str, k: int | None, eps: float | None, decay: float | None) -> tuple[str, int | None, float | None, float | None]:
    """The graph's name and its one parameter, checked; the others must be None."""
    graph = check_choice("graph", graph, GRAPHS)
    given = {"k": k, "eps": eps, "decay": decay}
    needed = _PARAMETER_OF[graph]
    for name, value in given.items():
        if name != needed and value is not None:
            raise ValueError(f"{name} is not a parameter of graph={graph!r} (it takes {needed or 'none'})")
    if needed is not None and given[needed] is None:
        raise ValueError(f"graph={graph!r} needs the parameter {needed}")
    if graph == "knn":
        k = check_integer("k", k, low=0)
    elif graph == "threshold":
        eps = check_real("eps", eps, low=0.0)
    elif graph == "exp":
        decay = check_real("decay", decay, low=0.0, high=float("inf"), high_open=True)
    return graph, k, eps, decay


def _weight_of_distance(d: torch.Tensor, graph: str, eps: float | None, decay: float | None) -> torch.Tensor:
    """The threshold or exponential graph's weight of distances ``d`` (any shape)."""
    return (d <= eps).float() if graph == "threshold" else torch.exp(-decay * d)


def _checked(distances: torch.Tensor, shape: tuple[int, ...], validate: bool) -> torch.Tensor:
    if not isinstance(distances, torch.Tensor) or tuple(distances.shape) != shape:
        got = tuple(distances.shape) if isinstance(distances, torch.Tensor) else type(distances).__name__
        raise ValueError(f"distances must have shape {shape} (one row and column per sample of x), got {got}")
    if validate and not bool((distances >= 0).all()):
        raise ValueError("distances must hold entries >= 0 (inf allowed), got a negative or NaN entry")
    return distances.float()
