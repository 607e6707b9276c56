"""darkstack.train.models: paper CNNs A-C, ResNet50, member ensembles, MC dropout, registry."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from darkstack.config import ConfigError, load_config
from darkstack.train.models import (
    ARCHITECTURES,
    MemberNetwork,
    ModelConfig,
    PaperCNNConfig,
    build_model,
    count_trainable_parameters,
    extract_member,
    mc_dropout,
)
from darkstack.train.models.members import MemberBatchNorm1d, MemberLinear, member_by_member
from darkstack.train.models.paper_cnn import (
    KERAS_BN_EPS,
    KERAS_BN_MOMENTUM,
    PAPER_SPECS,
    POOL_PX,
    PaperCNN,
    min_image_size,
)

#: Smallest convenient square input per architecture (A's last pooling needs 127 px).
SMALL_IMAGE_PX = {"A": 128, "B": 96, "C": 88, "resnet50": 32}


def _small_model(architecture: str, *, n_members: int, in_channels: int = 2) -> MemberNetwork:
    config = ModelConfig(
        architecture=architecture,  # type: ignore[arg-type]
        n_outputs=5,
        image_size=SMALL_IMAGE_PX[architecture],
    )
    return build_model(config, in_channels=in_channels, n_members=n_members)


def _small_input(architecture: str, *, batch: int = 4, in_channels: int = 2) -> Tensor:
    side = SMALL_IMAGE_PX[architecture]
    return torch.randn(batch, in_channels, side, side)


def _member_block(tensor: Tensor, *, member: int, n_members: int) -> Tensor:
    size = tensor.shape[0] // n_members
    return tensor[member * size : (member + 1) * size]


def _settle_batch_norm(model: nn.Module, x: Tensor) -> None:
    """Move the running statistics away from their initial values with a few batches."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x + torch.randn_like(x))


@pytest.mark.parametrize(
    ("architecture", "exact", "paper"),
    [("A", 704_532, 7e5), ("B", 1_343_892, 1.3e6), ("C", 2_237_204, 2.2e6)],
)
def test_paper_cnn_weights_match_tables(architecture: str, exact: int, paper: float) -> None:
    model = build_model(ModelConfig(architecture=architecture), in_channels=8)  # type: ignore[arg-type]
    count = count_trainable_parameters(model)
    assert count == exact
    assert abs(count - paper) / paper < 0.15
    x = torch.randn(2, 8, 128, 128)
    assert model(x).shape == (2, 1, 20)


def test_resnet50_weights_match_he_et_al() -> None:
    # 3 channels and 1000 outputs is the ImageNet ResNet50 (torchvision's 25,557,032).
    imagenet = build_model(ModelConfig(architecture="resnet50", n_outputs=1000), in_channels=3)
    assert count_trainable_parameters(imagenet) == 25_557_032
    del imagenet
    paper = build_model(ModelConfig(architecture="resnet50"), in_channels=8)
    assert count_trainable_parameters(paper) == 23_564_692
    assert paper(torch.randn(2, 8, 64, 64)).shape == (2, 1, 20)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_members_multiply_the_weights(architecture: str) -> None:
    single = count_trainable_parameters(_small_model(architecture, n_members=1))
    ensemble = _small_model(architecture, n_members=2)
    assert count_trainable_parameters(ensemble) == 2 * single
    assert ensemble(_small_input(architecture, batch=2)).shape == (2, 2, 5)


@pytest.mark.parametrize("architecture", ["A", "B", "C"])
def test_single_member_is_the_plain_keras_style_network(architecture: str) -> None:
    torch.manual_seed(1)
    spec = PAPER_SPECS[architecture]
    config = PaperCNNConfig(architecture=architecture, in_channels=3, n_outputs=7)  # type: ignore[arg-type]
    model = PaperCNN(config)
    layers: list[nn.Module] = []
    channels, side = 3, 128
    for stage in spec.conv:
        layers += [nn.Conv2d(channels, stage.out_channels, stage.kernel_px, stage.stride_px)]
        layers += [nn.ReLU()]
        side = (side - stage.kernel_px) // stage.stride_px + 1
        if stage.pool:
            layers.append(nn.MaxPool2d(POOL_PX))
            side //= POOL_PX
        if stage.dropout:
            layers.append(nn.Dropout(spec.dropout_fraction))
        layers.append(
            nn.BatchNorm2d(stage.out_channels, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
        )
        channels = stage.out_channels
    layers.append(nn.Flatten())
    width = channels * side * side
    for units in spec.dense_units:
        layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(spec.dropout_fraction)]
        layers.append(nn.BatchNorm1d(units, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM))
        width = units
    layers.append(nn.Linear(width, 7))
    plain = nn.Sequential(*layers)
    assert count_trainable_parameters(plain) == count_trainable_parameters(model)

    x = torch.randn(4, 3, 128, 128)
    _settle_batch_norm(model, x)
    ours, theirs = model.state_dict(), plain.state_dict()
    assert len(ours) == len(theirs)
    plain.load_state_dict(
        {
            name: value.reshape(theirs[name].shape)
            for name, value in zip(theirs, ours.values(), strict=True)
        }
    )
    model.eval()
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:, 0], plain(x))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_extracted_member_reproduces_the_ensemble(architecture: str) -> None:
    torch.manual_seed(2)
    n_members = 2 if architecture == "resnet50" else 3
    ensemble = _small_model(architecture, n_members=n_members)
    x = _small_input(architecture)
    _settle_batch_norm(ensemble, x)
    ensemble.eval()
    # Grouped and ungrouped convolution kernels sum in different orders; over ResNet50's 53
    # convolutions that leaves float32 differences of a few 1e-6 relative.
    tolerance = {"rtol": 2e-5, "atol": 1e-4} if architecture == "resnet50" else {}
    with torch.no_grad():
        outputs = ensemble(x)
        for member in range(n_members):
            single = extract_member(ensemble, member)
            assert single.n_members == 1
            assert not single.training
            torch.testing.assert_close(single(x)[:, 0], outputs[:, member], **tolerance)
    # Members answer differently, so the equality above is about the right member.
    assert not torch.allclose(outputs[:, 0], outputs[:, 1])


@pytest.mark.parametrize("architecture", ["A", "B", "C"])
def test_member_by_member_equals_the_grouped_forward(architecture: str) -> None:
    torch.manual_seed(4)
    model = _small_model(architecture, n_members=3)
    twin = copy.deepcopy(model)
    x = _small_input(architecture)
    model.train()
    twin.train()
    for layer in [*model.modules(), *twin.modules()]:
        if isinstance(layer, nn.Dropout):
            layer.p = 0.0  # masks are drawn in a different order; everything else must agree
    grouped = model.features(x)
    by_member = member_by_member(twin.features, x, n_members=3)
    torch.testing.assert_close(by_member, grouped)
    grouped.square().sum().backward()
    by_member.square().sum().backward()
    for (name, weight), (_, twin_weight) in zip(
        model.features.named_parameters(), twin.features.named_parameters(), strict=True
    ):
        assert weight.grad is not None and twin_weight.grad is not None, name
        torch.testing.assert_close(twin_weight.grad, weight.grad, rtol=1e-3, atol=1e-4)
    for (name, buffer), (_, twin_buffer) in zip(
        model.features.named_buffers(), twin.features.named_buffers(), strict=True
    ):
        torch.testing.assert_close(twin_buffer, buffer, msg=name)
    model.eval()
    twin.eval()
    with torch.no_grad():
        eval_by_member = member_by_member(twin.features, x, n_members=3)
        torch.testing.assert_close(eval_by_member, model.features(x))


def test_extracted_member_owns_its_tensors() -> None:
    ensemble = _small_model("B", n_members=2)
    single = extract_member(ensemble, 1)
    before = ensemble.state_dict()["head.0.weight"][1].clone()
    with torch.no_grad():
        for parameter in single.parameters():
            parameter.add_(1.0)
    torch.testing.assert_close(ensemble.state_dict()["head.0.weight"][1], before)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_members_start_from_different_weights(architecture: str) -> None:
    ensemble = _small_model(architecture, n_members=2)
    weights = [
        module.weight
        for module in ensemble.modules()
        if isinstance(module, nn.Conv2d | MemberLinear)
    ]
    assert weights
    for weight in weights:
        first = _member_block(weight.detach(), member=0, n_members=2)
        second = _member_block(weight.detach(), member=1, n_members=2)
        assert first.shape == second.shape
        assert not torch.equal(first, second)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_members_loss_reaches_only_its_own_weights(architecture: str) -> None:
    torch.manual_seed(3)
    n_members, member = 3, 1
    if architecture == "resnet50":
        n_members = 2
    ensemble = _small_model(architecture, n_members=n_members)
    ensemble.train()
    ensemble(_small_input(architecture))[:, member].square().sum().backward()
    for name, parameter in ensemble.named_parameters():
        assert parameter.grad is not None, name
        for other in range(n_members):
            block = _member_block(parameter.grad, member=other, n_members=n_members)
            if other == member:
                assert block.abs().sum() > 0, name
            else:
                assert torch.count_nonzero(block) == 0, (name, other)


def test_member_linear_initialises_like_nn_linear() -> None:
    torch.manual_seed(4)
    reference = nn.Linear(30, 6)
    torch.manual_seed(4)
    single = MemberLinear(in_features=30, out_features=6, n_members=1)
    torch.testing.assert_close(single.weight[0], reference.weight)
    torch.testing.assert_close(single.bias[0], reference.bias)

    ensemble = MemberLinear(in_features=30, out_features=6, n_members=4)
    bound = 1.0 / 30**0.5
    assert ensemble.weight.abs().max() <= bound
    assert ensemble.bias.abs().max() <= bound
    x = torch.randn(5, 4, 30)
    expected = torch.stack(
        [x[:, m] @ ensemble.weight[m].T + ensemble.bias[m] for m in range(4)], dim=1
    )
    torch.testing.assert_close(ensemble(x), expected)


def test_member_batch_norm_keeps_members_apart() -> None:
    norm = MemberBatchNorm1d(num_features=3, n_members=2)
    x = torch.randn(8, 2, 3)
    x[:, 1] = 100.0 * x[:, 1] + 50.0
    out = norm(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out.mean(dim=0), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.running_mean[3:], 0.1 * x[:, 1].mean(dim=0))


@pytest.mark.parametrize("architecture", ["A", "B"])
def test_mc_dropout_samples_while_eval_is_deterministic(architecture: str) -> None:
    model = _small_model(architecture, n_members=2)
    x = _small_input(architecture, batch=3)
    _settle_batch_norm(model, x)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
        model.train()
        with mc_dropout(model) as sampled:
            assert sampled is model
            for module in model.modules():
                assert module.training == isinstance(module, nn.Dropout)
            first, second = model(x), model(x)
    assert all(module.training for module in model.modules())
    assert not torch.allclose(first, second)


def test_unknown_architecture_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'D'.*\['A', 'B', 'C', 'resnet50'\]"):
        ModelConfig(architecture="D")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="architecture"):
        load_config(ModelConfig, overrides=["architecture=vgg16"])
    assert load_config(ModelConfig, overrides=["architecture=C"]).architecture == "C"


def test_bad_sizes_and_indices_are_named() -> None:
    assert min_image_size("A") == 127
    with pytest.raises(ValueError, match=r"^image_size=64; expected >= 127 px for architecture A$"):
        ModelConfig(architecture="A", image_size=64)
    with pytest.raises(ValueError, match=r"^image_size=64; expected >= 127 px for architecture A$"):
        PaperCNNConfig(architecture="A", in_channels=8, image_size=64, n_outputs=20)
    with pytest.raises(ValueError, match=r"^in_channels=0; expected a value >= 1$"):
        build_model(ModelConfig(), in_channels=0)
    with pytest.raises(ValueError, match="n_members must be a positive integer, got 0"):
        build_model(ModelConfig(), in_channels=1, n_members=0)
    with pytest.raises(ValueError, match="n_outputs"):
        ModelConfig(n_outputs=0)
    model = _small_model("B", n_members=2)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 2, 96, 96\)"):
        model(torch.randn(1, 2, 128, 128))
    with pytest.raises(ValueError, match=r"member must be in \[0, 2\), got 2"):
        extract_member(model, 2)
