"""Parameter counts of the three networks, derived by hand from their architectures."""

import math

import pytest
import torch

from localmixup.paper.models import MODELS, build_model, count_parameters


def conv(cin, cout, k, bias=False):
    return cin * cout * k * k + (cout if bias else 0)


def bn(c):
    return 2 * c  # weight and bias (running statistics are buffers)


def resnet18_params(classes, cin=3):
    total = conv(cin, 64, 3) + bn(64)
    c = 64
    for width, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            s = stride if block == 0 else 1
            total += conv(c, width, 3) + bn(width) + conv(width, width, 3) + bn(width)
            if s != 1 or c != width:
                total += conv(c, width, 1) + bn(width)  # projection shortcut
            c = width
    return total + c * classes + classes


def densenet_params(classes, cin=1, blocks=(6, 12, 24, 16), g=12, reduction=0.5):
    c = 2 * g
    total = conv(cin, c, 3)
    for i, n in enumerate(blocks):
        for _ in range(n):
            total += bn(c) + conv(c, 4 * g, 1) + bn(4 * g) + conv(4 * g, g, 3)
            c += g
        if i < len(blocks) - 1:
            out = math.floor(c * reduction)
            total += bn(c) + conv(c, out, 1)
            c = out
    return total + bn(c) + c * classes + classes


def lenet_params(classes, cin=3):
    return conv(cin, 6, 5, True) + conv(6, 16, 5, True) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * classes + classes)


def test_hand_derivations_give_the_known_totals():
    # The well-known CIFAR ResNet-18 (kuangliu/pytorch-cifar) has 11,173,962 parameters.
    assert resnet18_params(10) == 11_173_962
    assert resnet18_params(100) == 11_173_962 + 512 * 90 + 90
    # DenseNet-BC 6-12-24-16, k=12, 1 channel: channels 24 -> 96 -> 48 -> 192 -> 96 -> 384 -> 192 -> 384.
    assert densenet_params(10) == 1_000_186
    assert lenet_params(10) == 62_006


@pytest.mark.parametrize("name, classes, cin, expected", [
    ("resnet18", 10, 3, resnet18_params(10)),
    ("resnet18", 100, 3, resnet18_params(100)),
    ("densenet_bc", 10, 1, densenet_params(10)),
    ("lenet5", 10, 3, lenet_params(10)),
])
def test_parameter_counts(name, classes, cin, expected):
    assert count_parameters(build_model(name, classes, cin)) == expected


def test_small_densenet_option_count():
    model = build_model("densenet_bc", 10, 1, blocks=(2, 2, 2, 2), growth=8)
    assert count_parameters(model) == densenet_params(10, blocks=(2, 2, 2, 2), g=8)


@pytest.mark.parametrize("name, shape", [("resnet18", (3, 32, 32)), ("densenet_bc", (1, 28, 28)), ("lenet5", (3, 32, 32))])
def test_output_shape_and_gradient(name, shape):
    model = build_model(name, 10, shape[0], **({"blocks": (1, 1, 1, 1), "growth": 4} if name == "densenet_bc" else {}))
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("vgg", 10, 3)
    assert set(MODELS) == {"resnet18", "densenet_bc", "lenet5"}


def test_lenet_pads_inside_the_model_as_an_explicitly_padded_input():
    import torch.nn.functional as F

    from localmixup.paper.models import LeNet5

    torch.manual_seed(0)
    padded = LeNet5(10, 1, pad=2, pad_value=-1.0)
    plain = LeNet5(10, 1)
    plain.load_state_dict(padded.state_dict())
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(padded(x), plain(F.pad(x, (2, 2, 2, 2), value=-1.0)))
    assert count_parameters(padded) == 61_706
    with pytest.raises(ValueError, match="pad must be an integer"):
        LeNet5(10, 1, pad=-1)
    with pytest.raises(ValueError, match="pad_value must be a real number"):
        LeNet5(10, 1, pad=2, pad_value=float("nan"))
