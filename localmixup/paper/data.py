"""Image datasets of the paper's Table 1: a registry, offline Fashion-MNIST, integrity checks,
and a loader that keeps a whole split on the device and augments batches there.

Datasets are read through torchvision's own classes under ``lm.data_dir()`` (``data/``).
Fashion-MNIST is unpacked into torchvision's layout ``<root>/FashionMNIST/raw/`` without any
download, from its four idx ``.gz`` files: those in that folder if they are there (the route
without apt), else those of the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``). Every other dataset is downloaded by
torchvision where there is internet (unless ``download=False`` or
``$LOCALMIXUP_NO_DOWNLOAD=1``); when it is absent and cannot be downloaded, a short
:class:`~.DatasetUnavailable` names the dataset, the folder and the files expected.
"""

from __future__ import annotations

import gzip
import os
import shutil
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, NamedTuple

import torch

from localmixup.paper.record_files import data_dir
from localmixup.checks import check_choice, check_integer, check_seed, check_tensor

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class DatasetUnavailable(RuntimeError):
    """A dataset is absent (and could not be downloaded) or one of its files is corrupt."""


@dataclass(frozen=True)
class DatasetSpec:
    """What the project knows of one dataset.

    ``mean``/``std`` are the per-channel normalisation applied to pixels in [0, 1];
    ``augment`` is the paper's training augmentation (random crop with 4-pixel zero padding
    and horizontal flip) or none.
    """

    name: str
    torchvision_class: str
    folder: str  # sub-folder of the data root where torchvision keeps the files
    files: tuple[str, ...]  # files torchvision reads, relative to the data root
    num_classes: int
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool
    sizes: tuple[int, int]  # train, test


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR10", "cifar-10-batches-py",
        tuple(f"cifar-10-batches-py/{f}" for f in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta")),
        10, (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), True, (50000, 10000)),
    "cifar100": DatasetSpec(
        "cifar100", "CIFAR100", "cifar-100-python", ("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
        100, (3, 32, 32), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True, (50000, 10000)),
    "svhn": DatasetSpec(
        "svhn", "SVHN", ".", ("train_32x32.mat", "test_32x32.mat"),
        10, (3, 32, 32), (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), False, (73257, 26032)),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", "FashionMNIST", "FashionMNIST/raw", tuple(f"FashionMNIST/raw/{f}" for f in _MNIST_FILES),
        10, (1, 28, 28), (0.5,), (0.5,), False, (60000, 10000)),
    "mnist": DatasetSpec(
        "mnist", "MNIST", "MNIST/raw", tuple(f"MNIST/raw/{f}" for f in _MNIST_FILES),
        10, (1, 28, 28), (0.1307,), (0.3081,), False, (60000, 10000)),
}


class Arrays(NamedTuple):
    """A dataset as tensors: images uint8 (N, C, H, W), labels int64 (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def spec(name: str) -> DatasetSpec:
    """The :class:`~.DatasetSpec` of ``name`` (one of ``DATASETS``)."""
    return DATASETS[check_choice("dataset", name, tuple(DATASETS))]


def _download_allowed(download: bool | None) -> bool:
    if download is not None:
        return bool(download)
    return os.environ.get("LOCALMIXUP_NO_DOWNLOAD", "0") in ("", "0", "false", "False")


def _unavailable(s: DatasetSpec, root: Path, why: str) -> DatasetUnavailable:
    files = ", ".join(s.files)
    return DatasetUnavailable(f"dataset {s.name!r} {why}: expected {files} under {root}")


def _absent(s: DatasetSpec, root: Path, suffix: str = "") -> DatasetUnavailable | None:
    absent = [f for f in s.files if not (root / f).is_file()]
    if not absent:
        return None
    which = "is absent" if len(absent) == len(s.files) else f"is incomplete (missing {', '.join(absent)})"
    return _unavailable(s, root, which + suffix)


# --- IDX (MNIST-family) integrity -------------------------------------------------------------

def check_idx(path: Path) -> tuple[int, ...]:
    """Check that an uncompressed IDX file is complete: its header's dimensions must match
    its size exactly. Returns the dimensions; raises ``ValueError`` naming the file otherwise."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4)
        if len(header) < 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08 or header[3] not in (1, 3):
            raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
        dims_raw = f.read(4 * header[3])
    if len(dims_raw) < 4 * header[3]:
        raise ValueError(f"{path} is truncated (incomplete header)")
    dims = tuple(int.from_bytes(dims_raw[4 * i: 4 * i + 4], "big") for i in range(header[3]))
    expected = 4 + 4 * len(dims) + int(torch.tensor(dims).prod())
    if size != expected:
        raise ValueError(f"{path} is truncated or corrupt: {size} bytes, its header announces {expected}")
    return dims


def install_fashion_mnist(root: Path | None = None, source: Path | None = None) -> Path:
    """Unpack Fashion-MNIST's four idx ``.gz`` files into ``<root>/FashionMNIST/raw/``.

    Each file is taken from that folder if it is there (the route without apt), else from
    ``source`` (default: the Debian package's folder :data:`~.DEBIAN_FASHION_MNIST`). The Debian
    files are recompressed (their md5 differs from torchvision's), so integrity is checked on the
    content: gzip's CRC and length while unpacking, then the IDX header sizes; files already
    unpacked and complete are kept. Returns the raw folder. Raises :class:`~.DatasetUnavailable`
    naming the file when one is missing everywhere, or truncated or corrupt.
    """
    from torchvision.datasets import FashionMNIST

    root = Path(root) if root is not None else data_dir()
    source = Path(source) if source is not None else DEBIAN_FASHION_MNIST
    raw = root / "FashionMNIST" / "raw"
    for gz_name, _ in FashionMNIST.resources:
        target = raw / gz_name[: -len(".gz")]
        if target.is_file():
            try:
                check_idx(target)
                continue
            except ValueError:
                target.unlink()  # an incomplete earlier unpacking: redo it
        gz = next((p for p in (raw / gz_name, source / gz_name) if p.is_file()), None)
        if gz is None:
            names = ", ".join(name for name, _ in FashionMNIST.resources)
            raise DatasetUnavailable(f"dataset 'fashion_mnist' is absent: {gz_name} is in neither {raw} nor {source}; put "
                                     f"the four files {names} in {raw}/, or install the Debian package "
                                     f"dataset-fashion-mnist")
        remedy = "reinstall dataset-fashion-mnist" if gz.parent == source else "replace it with a complete copy"
        raw.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            check_idx(tmp)
            os.replace(tmp, target)
        except (OSError, EOFError, ValueError, zlib.error) as error:
            tmp.unlink(missing_ok=True)
            reason = str(error).replace(str(tmp), "its content")
            raise DatasetUnavailable(f"dataset 'fashion_mnist': {gz} is truncated or corrupt ({reason}); {remedy}") from None
    return raw


def check_idx_labels(path: Path, num_classes: int) -> None:
    """Check that the IDX labels file ``path`` (one dimension, complete: see :func:`check_idx`) holds
    labels in [0, num_classes - 1]; raises a ``ValueError`` naming the file and the range otherwise."""
    labels = Path(path).read_bytes()[8:]
    if labels and max(labels) >= num_classes:
        raise ValueError(f"{path} holds a label of {max(labels)}, outside the dataset's range [0, {num_classes - 1}]")


def _check_mnist_family(s: DatasetSpec, root: Path) -> None:
    error = _absent(s, root)
    if error is not None:
        raise error
    for f in s.files:
        try:
            if len(check_idx(root / f)) == 1:
                check_idx_labels(root / f, s.num_classes)
        except ValueError as error:
            raise DatasetUnavailable(f"dataset {s.name!r}: {error}; delete it and provide a complete copy") from None


def dataset_status(name: str, root: Path | None = None) -> str | None:
    """``None`` if ``name`` can be loaded offline from ``root``, else the reason why not (one line).

    Never downloads; Fashion-MNIST counts as available when its ``.gz`` files are in
    ``<root>/FashionMNIST/raw/`` or the Debian package is installed.
    """
    s = spec(name)
    root = Path(root) if root is not None else data_dir()
    try:
        if s.name == "fashion_mnist":
            install_fashion_mnist(root)
        if s.torchvision_class in ("MNIST", "FashionMNIST"):
            _check_mnist_family(s, root)
        elif (error := _absent(s, root)) is not None:
            raise error
    except DatasetUnavailable as error:
        return str(error)
    return None


def _torchvision_split(s: DatasetSpec, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    import torchvision.datasets as tvd

    cls = getattr(tvd, s.torchvision_class)
    if s.torchvision_class == "SVHN":
        ds = cls(str(root), split="train" if train else "test", download=download)
        x, y = torch.from_numpy(np.ascontiguousarray(ds.data)), torch.as_tensor(ds.labels, dtype=torch.int64)
    else:
        ds = cls(str(root), train=train, download=download)
        if isinstance(ds.data, torch.Tensor):  # MNIST family: (N, H, W)
            x = ds.data.unsqueeze(1).contiguous()
        else:  # CIFAR: (N, H, W, C) numpy
            x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        y = torch.as_tensor(ds.targets, dtype=torch.int64)
    return x, y


def load_arrays(name: str, root: Path | None = None, *, download: bool | None = None) -> Arrays:
    """Load a whole dataset as uint8 image tensors (N, C, H, W) and int64 labels.

    Args:
        name: one of ``DATASETS``.
        root: data folder (default ``lm.data_dir()``).
        download: let torchvision download a missing dataset; default: yes unless
            ``$LOCALMIXUP_NO_DOWNLOAD=1``. Fashion-MNIST never downloads (see
            :func:`~.install_fashion_mnist`).

    Raises:
        DatasetUnavailable: absent and not downloadable, or a file is truncated/corrupt
            (torchvision's md5 for CIFAR/SVHN, IDX header sizes for the MNIST family).
    """
    s = spec(name)
    root = Path(root) if root is not None else data_dir()
    return _load_arrays_cached(s.name, str(root.resolve()), _download_allowed(download))


@lru_cache(maxsize=4)
def _load_arrays_cached(name: str, root_str: str, download: bool) -> Arrays:
    s, root = DATASETS[name], Path(root_str)
    if s.name == "fashion_mnist":
        install_fashion_mnist(root)
        download = False
    if s.torchvision_class in ("MNIST", "FashionMNIST") and not download:
        _check_mnist_family(s, root)
    elif not download and (error := _absent(s, root, " (downloading is off)")) is not None:
        raise error
    try:
        x_train, y_train = _torchvision_split(s, root, True, download)
        x_test, y_test = _torchvision_split(s, root, False, download)
    except DatasetUnavailable:
        raise
    except Exception as error:  # torchvision: "not found or corrupted", network errors, bad pickles
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        present = all((root / f).is_file() for f in s.files)
        why = "has a corrupt file" if present else "is absent and could not be downloaded"
        raise _unavailable(s, root, f"{why} ({reason})") from None
    if s.torchvision_class in ("MNIST", "FashionMNIST"):
        _check_mnist_family(s, root)  # what torchvision read was complete
    if tuple(x_train.shape[1:]) != s.shape or x_train.shape[0] != s.sizes[0] or x_test.shape[0] != s.sizes[1]:
        raise DatasetUnavailable(f"dataset {s.name!r} in {root} has unexpected sizes {tuple(x_train.shape)} / {tuple(x_test.shape)}")
    return Arrays(x_train, y_train, x_test, y_test)


def subset(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int = 12345, *,
           stratified: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A random subset of ``size`` samples drawn from ``seed`` alone (``size`` None or >= N: all).

    Plain: ``size`` samples at random (the default seed gives the project's fixed subset, the same
    for every run). ``stratified``: ``size // C`` samples of each of the C classes, one more for
    the first ``size % C`` classes, kept in their order in the split. ``x`` and ``y`` are tensors of
    N samples each, ``seed`` an integer in [0, 2**64).
    """
    check_tensor("x", x), check_tensor("y", y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number N of samples, shapes (N, ...) and (N, ...), got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    seed = check_seed("seed", seed)
    if size is None or check_integer("size", size, low=1) >= x.shape[0]:
        return x, y
    g = torch.Generator().manual_seed(seed)
    if not stratified:
        order = torch.randperm(x.shape[0], generator=g)[:size]
        return x[order], y[order]
    classes = y.unique()
    quota = [size // len(classes) + (c < size % len(classes)) for c in range(len(classes))]
    members = [(y == label).nonzero().squeeze(1) for label in classes]
    if any(len(m) < q for m, q in zip(members, quota)):
        raise ValueError(f"a stratified subset of {size} needs {max(quota)} samples of every class; the split has "
                         f"{min(len(m) for m in members)} of its smallest class")
    order = torch.cat([m[torch.randperm(len(m), generator=g)[:q]] for m, q in zip(members, quota)]).sort().values
    return x[order], y[order]


# --- device-resident loader -------------------------------------------------------------------

class DeviceLoader:
    """Batches of one split held entirely on ``device``, normalised (and augmented) there.

    The images stay uint8 on the device (50k CIFAR images: 150 MB); each batch is gathered,
    converted to float, randomly cropped and flipped (if ``augment``) and normalised with a
    handful of batched kernels: no Python worker, no host-device copy per step.

    Args:
        x: uint8 images (N, C, H, W); y: int64 labels (N,).
        batch_size: samples per batch.
        mean, std: per-channel normalisation of pixels in [0, 1].
        shuffle: new random order every epoch (drawn from ``generator``).
        augment: random crop of the image padded with ``padding`` zero pixels, and
            horizontal flip with probability 1/2 (the paper's CIFAR augmentation).
        drop_last: drop the last incomplete batch (keeps every batch the same shape, which
            a captured CUDA graph needs).
        generator: torch generator on ``device`` for order and augmentation.
        channels_last: return batches in channels-last memory format (CUDA fast path).
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, mean: tuple[float, ...], std: tuple[float, ...],
        device: torch.device | str = "cpu", shuffle: bool = False, augment: bool = False, padding: int = 4,
        drop_last: bool = False, generator: torch.Generator | None = None, channels_last: bool = False,
    ) -> None:
        if x.dtype != torch.uint8 or x.ndim != 4 or y.shape != (x.shape[0],):
            raise ValueError(f"x must be uint8 (N, C, H, W) and y (N,), got {x.dtype} {tuple(x.shape)} and {tuple(y.shape)}")
        self.device = torch.device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.batch_size = check_integer("batch_size", batch_size, low=1)
        channels = x.shape[1]
        self.scale = (1.0 / (255.0 * torch.tensor(std, device=self.device))).view(1, channels, 1, 1)
        self.shift = (-torch.tensor(mean, device=self.device) / torch.tensor(std, device=self.device)).view(1, channels, 1, 1)
        self.shuffle, self.augment, self.padding, self.drop_last = shuffle, augment, padding, drop_last
        self.generator, self.channels_last = generator, channels_last

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 255] float images -> normalised float32."""
        return x.float() * self.scale + self.shift

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.padding
        padded = torch.nn.functional.pad(x, (p, p, p, p))  # zeros = black pixels, as RandomCrop(padding=4)
        offsets = torch.randint(0, 2 * p + 1, (2, b), generator=self.generator, device=self.device)
        flip = torch.rand(b, generator=self.generator, device=self.device) < 0.5
        rows = (offsets[0][:, None] + torch.arange(h, device=self.device))[:, None, :, None]
        cols = offsets[1][:, None] + torch.arange(w, device=self.device)
        cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
        batch = torch.arange(b, device=self.device)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=self.device)[None, :, None, None]
        return padded[batch, chan, rows, cols]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.x.shape[0]
        order = torch.randperm(n, generator=self.generator, device=self.device) if self.shuffle else torch.arange(n, device=self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size: (i + 1) * self.batch_size]
            x = self.x[idx].float()
            if self.augment:
                x = self._augment(x)
            x = x * self.scale + self.shift
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.y[idx]
