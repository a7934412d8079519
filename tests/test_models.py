"""The paper's three architectures and user models by import path."""

import textwrap

import pytest
import torch

from amc_dist.models import MODEL_NAMES, build_model, build_model_for


@pytest.mark.parametrize(
    ("name", "shape", "kwargs"),
    [
        ("lenet", (1, 28, 28), {}),
        ("resnet32", (3, 32, 32), {}),
        ("resnet32", (1, 28, 28), {"in_channels": 1}),
        ("proxy_cnn", (1, 28, 28), {}),
        ("proxy_cnn", (3, 32, 32), {"in_channels": 3, "image_size": 32}),
    ],
)
def test_logits_shape(name, shape, kwargs):
    model = build_model(name, **kwargs).eval()
    assert model(torch.rand(4, *shape)).shape == (4, 10)


def test_parameter_counts_match_the_papers_architectures():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(build_model("lenet")) == 61_706  # LeNet-5: 6/16 maps, 120-84-10
    # He et al. 2016 quote 0.46M for ResNet-32 (option A shortcuts carry no parameters).
    assert count(build_model("resnet32")) == 464_154
    resnet = build_model("resnet32")
    assert sum(isinstance(m, torch.nn.Conv2d) for m in resnet.modules()) == 31  # + 1 dense = 32 layers


def test_proxy_cnn_layout():
    layers = list(build_model("proxy_cnn"))
    convs = [m for m in layers if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in layers if isinstance(m, torch.nn.Linear)]
    drops = [m.p for m in layers if isinstance(m, torch.nn.Dropout)]
    pools = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.MaxPool2d)]
    assert (len(convs), len(dense), drops, len(pools)) == (4, 2, [0.4, 0.3, 0.2], 2)
    assert all(
        isinstance(layers[i - 1], torch.nn.ReLU) and isinstance(layers[i - 2], torch.nn.Conv2d) for i in pools
    )


def test_build_model_for_reads_shape_and_classes():
    model = build_model_for("resnet32", (3, 32, 32), 7)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    assert build_model_for("lenet", (1, 20, 20), 4)(torch.rand(2, 1, 20, 20)).shape == (2, 4)


def test_user_model_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent(
            """
            import torch
            def tiny(num_classes=10, width=8):
                return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(width),
                                           torch.nn.ReLU(), torch.nn.Linear(width, num_classes))
            def not_a_model():
                return 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_model("my_models:tiny", width=5)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    # only the keyword arguments the factory accepts are inferred from the data
    assert build_model_for("my_models:tiny", (1, 28, 28), 3)(torch.rand(2, 1, 28, 28)).shape == (2, 3)
    with pytest.raises(ValueError, match="returned int, not nn.Module"):
        build_model("my_models:not_a_model")
    with pytest.raises(ValueError, match="cannot import model factory 'my_models:missing'"):
        build_model("my_models:missing")


def test_unknown_model_lists_the_choices():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*" + ", ".join(MODEL_NAMES)):
        build_model("vgg")


def test_too_small_images_are_refused():
    with pytest.raises(ValueError, match="image_size=8 is too small for LeNet"):
        build_model("lenet", image_size=8)
