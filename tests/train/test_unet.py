"""The fastMRI-style U-Net: shapes, parameter counts against closed forms, fusion, sizes."""

from __future__ import annotations

import pytest
import torch

from darkstack.train.models import extract_member
from darkstack.train.models.unet import UNet, UNetConfig, UNetMember


def _block(inputs: int, outputs: int) -> int:
    # Two bias-free 3x3 convolutions; InstanceNorm2d (affine=False) adds no weights.
    return 9 * inputs * outputs + 9 * outputs * outputs


def _expected_parameters(*, views: int, fusion: str, channels: int, poolings: int) -> int:
    """The U-Net's weights written out stage by stage (fastMRI's Unet for one encoder)."""
    encoders, in_channels = (views, 1) if fusion == "late" else (1, views)
    widths = [channels * 2**level for level in range(poolings)]
    encoder = _block(in_channels, widths[0]) + sum(
        _block(widths[level - 1], widths[level]) for level in range(1, poolings)
    )
    bottleneck = _block(encoders * widths[-1], 2 * widths[-1])
    # A bias-free 2x2 transposed convolution, then a block on upsampled + skip channels.
    decoder = sum(4 * 2 * w * w + _block((1 + encoders) * w, w) for w in widths)
    head = channels + 1  # 1x1 convolution to one map, with bias
    return encoders * encoder + bottleneck + decoder + head


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("views", "fusion", "channels", "poolings"),
    [(1, "early", 8, 3), (3, "early", 16, 3), (3, "late", 8, 3), (2, "late", 4, 2)],
)
def test_parameter_count_matches_closed_form(
    views: int, fusion: str, channels: int, poolings: int
) -> None:
    config = UNetConfig(n_views=views, fusion=fusion, channels=channels, poolings=poolings)  # type: ignore[arg-type]
    assert _count(UNet(config)) == _expected_parameters(
        views=views, fusion=fusion, channels=channels, poolings=poolings
    )


def test_fastmri_default_size() -> None:
    # fastMRI's Unet(in_chans=1, out_chans=1, chans=32, num_pool_layers=4) has 7,756,097
    # weights (counted from its published module: bias-free convolutions, affine-free norms).
    assert _count(UNet(UNetConfig(channels=32, poolings=4))) == 7_756_097


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_output_map_has_the_input_map_shape(fusion: str) -> None:
    model = UNet(UNetConfig(n_views=3, fusion=fusion, channels=8, poolings=3))  # type: ignore[arg-type]
    maps = torch.randn(2, 3, 64, 48)
    assert model(maps).shape == (2, 1, 64, 48)


def test_late_fusion_differs_from_early_fusion_on_identical_views() -> None:
    early = UNet(UNetConfig(n_views=3, fusion="early", channels=8, poolings=3))
    late = UNet(UNetConfig(n_views=3, fusion="late", channels=8, poolings=3))
    assert len(late.encoders) == 3 and len(early.encoders) == 1
    assert _count(late) != _count(early)
    torch.manual_seed(0)
    view = torch.randn(2, 1, 64, 64)
    maps = view.expand(2, 3, 64, 64).contiguous()
    with torch.no_grad():
        out_early, out_late = early.eval()(maps), late.eval()(maps)
    assert torch.isfinite(out_early).all() and torch.isfinite(out_late).all()
    assert not torch.allclose(out_early, out_late)


def test_size_not_divisible_by_the_poolings_is_refused_in_one_line() -> None:
    model = UNet(UNetConfig(channels=4, poolings=3))
    with pytest.raises(ValueError, match=r"60x64 pixels.*multiples of 2\*\*poolings = 8") as info:
        model(torch.randn(1, 1, 60, 64))
    assert "\n" not in str(info.value)


def test_wrong_number_of_views_is_refused() -> None:
    model = UNet(UNetConfig(n_views=3, channels=4, poolings=3))
    with pytest.raises(ValueError, match=r"expected \(batch, 3, height, width\)"):
        model(torch.randn(1, 1, 64, 64))


def _ensemble(n_members: int, *, seed: int = 0) -> UNetMember:
    torch.manual_seed(seed)
    return UNetMember(UNetConfig(n_views=2, channels=4, poolings=2), n_members=n_members)


def test_ensemble_answers_one_map_per_member() -> None:
    maps = torch.randn(3, 2, 16, 24)
    assert _ensemble(3)(maps).shape == (3, 3, 16, 24)


def test_ensemble_members_are_lone_unets_with_their_own_initialisation() -> None:
    ensemble = _ensemble(3).eval()
    maps = torch.randn(2, 2, 16, 16)
    outputs = ensemble(maps)
    lone = []
    for member in range(3):
        single = extract_member(ensemble, member)
        # The cut-out member is a plain UNet: its own forward, no member slicing.
        assert isinstance(single.unet, UNet) and _count(single) * 3 == _count(ensemble)
        lone.append(single(maps))
        torch.testing.assert_close(outputs[:, member : member + 1], lone[-1])
    assert not torch.allclose(lone[0], lone[1]) and not torch.allclose(lone[1], lone[2])
    # Member 0 is initialised as a lone network from the same seed would be.
    torch.manual_seed(0)
    first = UNet(UNetConfig(n_views=2, channels=4, poolings=2))
    torch.testing.assert_close(outputs[:, 0:1], first.eval()(maps))


def test_a_step_on_member_0s_loss_leaves_member_1_unchanged() -> None:
    ensemble = _ensemble(2).train()
    before = {name: p.detach().clone() for name, p in ensemble.named_parameters()}
    optimiser = torch.optim.Adam(ensemble.parameters(), lr=1e-2)
    ensemble(torch.randn(4, 2, 16, 16))[:, 0].pow(2).mean().backward()
    optimiser.step()
    moved = 0
    for name, parameter in ensemble.named_parameters():
        rows = parameter.shape[0] // 2
        torch.testing.assert_close(parameter[rows:], before[name][rows:], rtol=0, atol=0)
        moved += int(not torch.equal(parameter[:rows], before[name][:rows]))
    assert moved == len(before)


def test_one_member_keeps_the_single_unet_state_dict_keys() -> None:
    # Runs saved before ensembles load into UNetMember(n_members=1) unchanged.
    single = _ensemble(1)
    assert list(single.state_dict()) == [f"unet.{key}" for key in single.unet.state_dict()]
    assert list(_ensemble(2).state_dict()) == list(single.state_dict())
