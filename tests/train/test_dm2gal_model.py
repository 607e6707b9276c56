"""dm2gal's network: the public code's architecture, its output and its size."""

from __future__ import annotations

import pytest
import torch

from darkstack.config import SettingError
from darkstack.train.models import count_trainable_parameters, extract_member
from darkstack.train.models.dm2gal_cnn import Dm2galCNN, Dm2galCNNConfig, Dm2galMember


def _public_code_count(*, ch: int, nblocks: int, kernels: tuple[int, int, int], side: int) -> int:
    """Weights of ``DM2Gal(BasicBlock, in_ch=2, ch, nblocks)`` written out layer by layer:
    a Conv3d has k³·c_in·c_out + c_out weights, a BatchNorm3d 2·c_out."""
    total, c_in = 0, 2
    for stage, kernel in enumerate(kernels):
        width = ch * 2**stage
        for _ in range(nblocks):
            total += kernel**3 * c_in * width + width + 2 * width
            c_in = width
            side -= kernel - 1
        total += 27 * c_in * 2 * width + 2 * width + 2 * 2 * width
        c_in = 2 * width
        side = (side - 3) // 2 + 1
    return total + (c_in * side**3 * 256 + 256) + (256 + 1)


def test_the_paper_preset_is_the_public_codes_network() -> None:
    config = Dm2galCNNConfig()
    model = Dm2galCNN(config)
    expected = _public_code_count(ch=128, nblocks=2, kernels=(7, 5, 3), side=65)
    assert count_trainable_parameters(model) == expected == 55_100_161


def test_the_scaled_network_has_six_blocks_and_maps_a_crop_to_one_value() -> None:
    config = Dm2galCNNConfig(crop_side=33, width=8, kernels=(5, 3, 3), blocks_per_stage=1)
    member = Dm2galMember(config)
    convolutions = [m for m in member.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(convolutions) == 6
    assert [c.stride[0] for c in convolutions] == [1, 2, 1, 2, 1, 2]
    assert count_trainable_parameters(member) == _public_code_count(
        ch=8, nblocks=1, kernels=(5, 3, 3), side=33
    )
    member.eval()
    assert member(torch.rand(3, 2, 33, 33, 33)).shape == (3, 1, 1)


def test_a_crop_too_small_for_the_kernels_is_refused() -> None:
    with pytest.raises(SettingError, match="crop_side"):
        Dm2galCNNConfig(crop_side=25, kernels=(5, 3, 3), blocks_per_stage=1)


SCALED = Dm2galCNNConfig(crop_side=17, width=2, kernels=(3, 3), blocks_per_stage=1)


def _ensemble(n_members: int) -> Dm2galMember:
    torch.manual_seed(0)
    return Dm2galMember(SCALED, n_members=n_members)


def test_ensemble_members_are_lone_networks_with_their_own_initialisation() -> None:
    ensemble = _ensemble(3)
    crops = torch.rand(4, 2, 17, 17, 17)
    # A training-mode forward updates each member's running statistics as a lone network's.
    lone = [extract_member(ensemble, member) for member in range(3)]
    ensemble.train()(crops)
    for single in lone:
        single.train()(crops)
    ensemble.eval()
    outputs = ensemble(crops)
    assert outputs.shape == (4, 3, 1)
    for member, single in enumerate(lone):
        torch.testing.assert_close(outputs[:, member : member + 1], single.eval()(crops))
        torch.testing.assert_close(
            outputs[:, member : member + 1], extract_member(ensemble, member)(crops)
        )
    assert not torch.allclose(outputs[:, 0], outputs[:, 1])
    # Member 0 is initialised as a lone network from the same seed would be.
    torch.manual_seed(0)
    first = Dm2galMember(SCALED)
    first.train()(crops)
    torch.testing.assert_close(outputs[:, 0:1], first.eval()(crops))


def test_a_step_on_member_0s_loss_leaves_member_1_unchanged() -> None:
    ensemble = _ensemble(2).train()
    before = {name: p.detach().clone() for name, p in ensemble.named_parameters()}
    optimiser = torch.optim.Adam(ensemble.parameters(), lr=1e-2)
    ensemble(torch.rand(4, 2, 17, 17, 17))[:, 0].pow(2).mean().backward()
    optimiser.step()
    for name, parameter in ensemble.named_parameters():
        rows = parameter.shape[0] // 2
        torch.testing.assert_close(parameter[rows:], before[name][rows:], rtol=0, atol=0)
        assert not torch.equal(parameter[:rows], before[name][:rows])


def test_one_member_keeps_the_single_network_state_dict_keys() -> None:
    # Runs saved before ensembles load into Dm2galMember(n_members=1) unchanged.
    single = _ensemble(1)
    assert list(single.state_dict()) == [f"cnn.{key}" for key in single.cnn.state_dict()]
    assert list(_ensemble(2).state_dict()) == list(single.state_dict())


@pytest.mark.parametrize("n_members", [1, 2])
def test_the_centre_skip_hands_the_central_voxel_and_only_it_to_the_dense_layers(
    n_members: int,
) -> None:
    import dataclasses

    torch.manual_seed(1)
    skip = Dm2galMember(dataclasses.replace(SCALED, centre_skip=True), n_members=n_members)
    plain = Dm2galMember(SCALED, n_members=n_members)
    # The first dense layer takes two more inputs (one per channel) into its 256 units, through
    # a batch norm of two weights and two biases.
    extra = (2 * SCALED.dense_units + 4) * n_members
    assert count_trainable_parameters(skip) == count_trainable_parameters(plain) + extra
    for model in (skip, plain):
        # With every convolution zeroed the features are constant: only a skip passes a voxel.
        for module in model.modules():
            if isinstance(module, torch.nn.Conv3d):
                torch.nn.init.zeros_(module.weight)
                torch.nn.init.zeros_(module.bias)
        model.eval()
    crops = torch.rand(4, 2, 17, 17, 17)
    centre, corner = crops.clone(), crops.clone()
    centre[:, 1, 8, 8, 8] += 5.0
    corner[:, 1, 8, 8, 7] += 5.0
    with torch.no_grad():
        assert not torch.allclose(skip(centre), skip(crops))
        torch.testing.assert_close(skip(corner), skip(crops))
        torch.testing.assert_close(plain(centre), plain(crops))
