"""Datasets: offline Fashion-MNIST, clear errors for absent or corrupt files, the device loader."""

import gzip
import shutil

import pytest
import torch

from localmixup.paper.data import (DATASETS, DEBIAN_FASHION_MNIST, DatasetUnavailable, DeviceLoader, check_idx, dataset_status,
                             install_fashion_mnist, load_arrays, subset)

def test_fashion_mnist_loads_offline(tmp_path):
    a = load_arrays("fashion_mnist", tmp_path, download=False)
    assert a.x_train.shape == (60000, 1, 28, 28) and a.x_train.dtype == torch.uint8
    assert a.x_test.shape == (10000, 1, 28, 28)
    assert sorted(a.y_test.unique().tolist()) == list(range(10))
    assert torch.bincount(a.y_train).tolist() == [6000] * 10
    assert dataset_status("fashion_mnist", tmp_path) is None
    assert (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn", "mnist"])
def test_absent_dataset_gives_a_short_message(tmp_path, name, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_NO_DOWNLOAD", "1")
    with pytest.raises(DatasetUnavailable) as info:
        load_arrays(name, tmp_path)
    message = str(info.value)
    assert name in message and str(tmp_path) in message and DATASETS[name].files[0] in message
    assert "\n" not in message and len(message) < 400
    assert dataset_status(name, tmp_path) is not None


def test_truncated_idx_is_detected(tmp_path):
    good = tmp_path / "good"
    with open(good, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(18))
    assert check_idx(good) == (2, 3, 3)
    bad = tmp_path / "bad"
    bad.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        check_idx(bad)


def test_truncated_idx_file_is_reported_not_trained_on(tmp_path):
    install_fashion_mnist(tmp_path)
    shutil.copytree(tmp_path / "FashionMNIST", tmp_path / "MNIST")  # stands for an MNIST copy
    labels = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-100])
    with pytest.raises(DatasetUnavailable, match="truncated") as info:
        load_arrays("mnist", tmp_path, download=False)
    assert "t10k-labels-idx1-ubyte" in str(info.value)


def test_truncated_unpacked_fashion_mnist_is_unpacked_again(tmp_path):
    install_fashion_mnist(tmp_path)
    images = tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    a = load_arrays("fashion_mnist", tmp_path, download=False)
    assert a.x_test.shape == (10000, 1, 28, 28)
    assert check_idx(images) == (10000, 28, 28)


def test_truncated_source_gz_is_reported(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for f in DEBIAN_FASHION_MNIST.glob("*.gz"):
        shutil.copy(f, source / f.name)
    gz = source / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:10000])
    with pytest.raises(DatasetUnavailable, match="truncated or corrupt"):
        install_fashion_mnist(tmp_path / "data", source)
    assert not list((tmp_path / "data").rglob("*.tmp"))


def test_corrupt_gz_content_is_reported(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for f in DEBIAN_FASHION_MNIST.glob("*.gz"):
        shutil.copy(f, source / f.name)
    with gzip.open(source / "t10k-labels-idx1-ubyte.gz", "wb") as f:  # a valid gzip whose content is not IDX
        f.write(b"not an idx file")
    with pytest.raises(DatasetUnavailable, match="t10k-labels"):
        install_fashion_mnist(tmp_path / "data", source)


def test_subset_is_fixed_and_seed_independent_of_runs():
    x, y = torch.arange(100).view(100, 1, 1, 1).to(torch.uint8), torch.arange(100)
    a, b = subset(x, y, 10), subset(x, y, 10)
    assert torch.equal(a[1], b[1]) and len(set(a[1].tolist())) == 10


def test_device_loader_crop_flip_and_normalisation():
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(8)
    plain = DeviceLoader(x, y, 4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    batches = list(plain)
    assert len(batches) == 2 and torch.equal(batches[0][1], y[:4])
    assert torch.allclose(batches[0][0], (x[:4].float() / 255 - 0.5) / 0.25, atol=1e-5)

    aug = DeviceLoader(x, y, 8, mean=(0.0,) * 3, std=(1.0,) * 3, augment=True, generator=torch.Generator().manual_seed(0))
    out, labels = next(iter(aug))
    padded = torch.nn.functional.pad(x.float() / 255, (4, 4, 4, 4))
    for i in range(8):  # every output is a 32x32 window of the padded image, possibly mirrored
        found = any(torch.allclose(out[i], w, atol=1e-6) for dy in range(9) for dx in range(9)
                    for w in (padded[i, :, dy:dy + 32, dx:dx + 32], padded[i, :, dy:dy + 32, dx:dx + 32].flip(2)))
        assert found
    again, _ = next(iter(DeviceLoader(x, y, 8, mean=(0.0,) * 3, std=(1.0,) * 3, augment=True, generator=torch.Generator().manual_seed(0))))
    assert torch.equal(out, again)


def test_device_loader_shuffle_and_drop_last():
    x, y = torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10)
    loader = DeviceLoader(x, y, 4, mean=(0.0,), std=(1.0,), shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(1))
    seen = torch.cat([b for _, b in loader])
    assert len(loader) == 2 and seen.numel() == 8 and len(set(seen.tolist())) == 8
    with pytest.raises(ValueError, match="uint8"):
        DeviceLoader(x.float(), y, 4, mean=(0.0,), std=(1.0,))


def test_device_loader_channels_last_gives_the_same_batches():
    """The CUDA path's layout (channels-last batches into a channels-last model), checked on the CPU."""
    from localmixup.paper.models import build_model

    x, y = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), torch.arange(8)
    options = dict(mean=(0.5,) * 3, std=(0.25,) * 3, shuffle=True, augment=True)
    default = DeviceLoader(x, y, 4, generator=torch.Generator().manual_seed(0), **options)
    last = DeviceLoader(x, y, 4, generator=torch.Generator().manual_seed(0), channels_last=True, **options)
    model = build_model("lenet5", 10, 3).eval()
    model_last = build_model("lenet5", 10, 3).eval()
    model_last.load_state_dict(model.state_dict())
    model_last = model_last.to(memory_format=torch.channels_last)
    for (a, ya), (b, yb) in zip(default, last):
        assert b.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a, b) and torch.equal(ya, yb)
        with torch.no_grad():
            torch.testing.assert_close(model_last(b), model(a), rtol=1e-5, atol=1e-5)


# --- the route without apt: the four .gz files in <data>/FashionMNIST/raw/ ----------------------

def _raw_gz_copies(root, monkeypatch):
    """Copies of the Debian files in ``root/FashionMNIST/raw/``, with the Debian folder made absent."""
    import localmixup.paper.data as data

    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in DEBIAN_FASHION_MNIST.glob("*.gz"):
        shutil.copy(f, raw / f.name)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", root / "no-debian-package")
    return raw


def test_fashion_mnist_gz_files_in_the_raw_folder_are_used_without_debian(tmp_path, monkeypatch):
    raw = _raw_gz_copies(tmp_path, monkeypatch)
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        header, labels = (content := f.read())[:8], content[8:]
    shifted = bytes((y + 1) % 10 for y in labels)  # these files, not the package's, must be the ones read
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(header + shifted)
    assert dataset_status("fashion_mnist", tmp_path) is None
    a = load_arrays("fashion_mnist", tmp_path, download=False)
    assert a.x_train.shape == (60000, 1, 28, 28) and a.x_test.shape == (10000, 1, 28, 28)
    assert a.y_test.tolist() == list(shifted)


@pytest.mark.parametrize("damage", ["truncated", "empty", "not gzip", "not idx"])
def test_a_damaged_gz_in_the_raw_folder_is_named(tmp_path, monkeypatch, damage):
    raw = _raw_gz_copies(tmp_path, monkeypatch)
    gz = raw / "train-images-idx3-ubyte.gz"
    if damage == "not idx":
        with gzip.open(gz, "wb") as f:
            f.write(b"not an idx file")
    else:
        gz.write_bytes({"truncated": gz.read_bytes()[:20000], "empty": b"", "not gzip": b"<html>404</html>"}[damage])
    content = gz.read_bytes()
    with pytest.raises(DatasetUnavailable) as caught:
        load_arrays("fashion_mnist", tmp_path, download=False)
    message = str(caught.value)
    assert f"{gz} is truncated or corrupt" in message and "replace it with a complete copy" in message
    assert "\n" not in message and gz.read_bytes() == content and not list(tmp_path.rglob("*.tmp"))
    assert dataset_status("fashion_mnist", tmp_path) == message


def test_fashion_mnist_absent_everywhere_names_both_routes(tmp_path, monkeypatch):
    import localmixup.paper.data as data

    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")
    with pytest.raises(DatasetUnavailable) as caught:
        load_arrays("fashion_mnist", tmp_path / "data", download=False)
    message = str(caught.value)
    assert str(tmp_path / "data" / "FashionMNIST" / "raw") in message and "dataset-fashion-mnist" in message
    assert "t10k-labels-idx1-ubyte.gz" in message and "\n" not in message


def test_stratified_subsets_hold_every_class_equally_and_depend_on_their_seed_only():
    from localmixup.paper.data import subset

    x = torch.arange(1000)
    y = x % 7
    xs, ys = subset(x, y, 100, 3, stratified=True)
    assert torch.bincount(ys, minlength=7).tolist() == [15, 15] + [14] * 5  # 100 = 7 x 14 + 2
    assert torch.equal(ys, xs % 7) and len(set(xs.tolist())) == 100 and torch.equal(xs, xs.sort().values)
    again, other = subset(x, y, 100, 3, stratified=True), subset(x, y, 100, 4, stratified=True)
    assert torch.equal(again[0], xs) and not torch.equal(other[0], xs)
    with pytest.raises(ValueError, match="stratified subset of 990 needs 165 samples of every class; the split has 143 of its smallest"):
        subset(x, y.masked_fill(y == 6, 5), 990, 0, stratified=True)


# --- labels out of range, $LOCALMIXUP_DATA not a folder ---------------------------------------

def _idx(path, dims, content):
    """A small uncompressed unsigned-byte IDX file: header with ``dims``, then ``content``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + bytes(content))


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_a_label_out_of_range_is_named_at_load_not_in_training(tmp_path, split):
    raw = tmp_path / "FashionMNIST" / "raw"
    for s in ("train", "t10k"):
        _idx(raw / f"{s}-images-idx3-ubyte", (2, 28, 28), [0] * (2 * 28 * 28))
        _idx(raw / f"{s}-labels-idx1-ubyte", (2,), [3, 200 if s == split else 9])  # right size and header
    with pytest.raises(DatasetUnavailable) as caught:
        load_arrays("fashion_mnist", tmp_path, download=False)
    message = str(caught.value)
    assert f"{raw / f'{split}-labels-idx1-ubyte'} holds a label of 200, outside the dataset's range [0, 9]" in message
    assert "\n" not in message and dataset_status("fashion_mnist", tmp_path) == message


@pytest.mark.parametrize("value", ["file", ""])
def test_localmixup_data_naming_a_file_is_one_clear_line(tmp_path, monkeypatch, value):
    import localmixup.paper as lp

    target = tmp_path / "not-a-folder"
    target.write_text("")
    monkeypatch.setenv("LOCALMIXUP_DATA", str(target) if value else "")
    with pytest.raises(ValueError, match=r"^\$LOCALMIXUP_DATA must name a folder for the datasets") as caught:
        load_arrays("fashion_mnist", download=False)
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("LOCALMIXUP_DATA", str(tmp_path / "new"))
    assert lp.data_dir() == tmp_path / "new"  # an absent folder is fine: it is made when needed
