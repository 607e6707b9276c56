"""dm2gal's 3D CNN (Kasmanoff et al. 2020): a 2-channel crop to the stellar mass of its centre.

The paper (§2): blocks of Conv3d + BatchNorm + ReLU that alternate a kernel >= 5 with stride 1
and a kernel 3 with stride 2, down to a single voxel, then two dense layers to one output. The
public code (``src/models/models.py``, ``DM2Gal(BasicBlock, in_ch=2, ch, nblocks=2)``) has
three stages; stage ``s`` is ``nblocks`` unpadded stride-1 convolutions of kernel 7, 5, 3 and
one unpadded kernel-3 stride-2 convolution, with widths ``ch, 2ch, 2ch, 4ch, 4ch, 8ch``, then
``Linear(8ch, 256)``, ReLU, ``Linear(256, 1)``. With ``nblocks=2`` a 65³ crop goes
65 -> 59 -> 53 -> 26 -> 22 -> 18 -> 8 -> 6 -> 4 -> 1: nine convolutional blocks, not the six
the paper's text counts (six is ``nblocks=1``, which leaves 4³ voxels from 65³). This module
is that network with ``blocks_per_stage`` and the stage kernels as settings; the dense layer
takes whatever volume is left, so other crop sides work.

``centre_skip`` (not in the paper) also hands the crop's central voxel, every channel, to the
dense layers. Trained on the Dark run's subhalo voxels of `small`, the paper's network answered
with a validation MSE of 0.198 dex², twice the 0.100 of a quadratic in the central voxel's
``dark_subhalo_mass`` alone: the stride-2 blocks and batch norms blur the one voxel that
carries most of the answer, and 8192 draws an epoch do not recover it (docs/dm2gal.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from darkstack.config import Checked, Range, Rule
from darkstack.train.models.members import MemberNetwork, stack_members, stacked_member_outputs


def _stage_sides(config: Dm2galCNNConfig) -> list[int]:
    """Crop side after each block, in order."""
    sides, side = [], config.crop_side
    for kernel in config.kernels:
        for _ in range(config.blocks_per_stage):
            side = side - kernel + 1
            sides.append(side)
        side = (side - 3) // 2 + 1
        sides.append(side)
    return sides


def _fits(config: Dm2galCNNConfig) -> str | None:
    sides = _stage_sides(config)
    if config.kernels and min(config.kernels) >= 1 and min(sides) >= 1 and sides[-2] >= 3:
        return None
    return (
        f"large enough for kernels {list(config.kernels)} with {config.blocks_per_stage} blocks "
        f"per stage (sides would be {sides})"
    )


@dataclass(frozen=True, kw_only=True)
class Dm2galCNNConfig(Checked):
    """The dm2gal network's shape.

    Parameters
    ----------
    crop_side : int
        Voxels per side of the input crops (65 in the paper).
    in_channels : int
        Input fields (2: dark-matter and subhalo mass).
    width : int
        Channels of the first stage (``ch``: 128 in the paper preset; three stages have
        ``width, 2 width, 2 width, 4 width, 4 width, 8 width``).
    kernels : tuple of int
        Kernel of the stride-1 blocks of each stage, one stage per entry (7, 5, 3 in the
        public code); a stage ends with a kernel-3 stride-2 block and doubles the width.
    blocks_per_stage : int
        Stride-1 blocks per stage (``nblocks``: 2 in the public code).
    dense_units : int
        Units of the hidden dense layer (256).
    centre_skip : bool
        Also feed the central voxel's inputs to the dense layers (off in the paper).
    """

    crop_side: Annotated[int, Range(ge=1)] = 65
    in_channels: Annotated[int, Range(ge=1)] = 2
    width: Annotated[int, Range(ge=1)] = 128
    kernels: tuple[int, ...] = (7, 5, 3)
    blocks_per_stage: Annotated[int, Range(ge=1)] = 2
    dense_units: Annotated[int, Range(ge=1)] = 256
    centre_skip: bool = False

    RULES = (Rule("crop_side", _fits),)


def _block(inputs: int, outputs: int, *, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(inputs, outputs, kernel_size=kernel, stride=stride),
        nn.BatchNorm3d(outputs),
        nn.ReLU(inplace=True),
    )


class Dm2galCNN(nn.Module):
    """Crops ``(B, in_channels, S, S, S)`` to one standardised output each, ``(B, 1)``."""

    def __init__(self, config: Dm2galCNNConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        channels = config.in_channels
        for stage, kernel in enumerate(config.kernels):
            width = config.width * 2**stage
            for _ in range(config.blocks_per_stage):
                layers.append(_block(channels, width, kernel=kernel, stride=1))
                channels = width
            layers.append(_block(channels, 2 * width, kernel=3, stride=2))
            channels = 2 * width
        self.features = nn.Sequential(*layers)
        flat = channels * _stage_sides(config)[-1] ** 3
        if config.centre_skip:
            flat += config.in_channels
            # The inputs are standardised over every voxel, most of them empty: a subhalo
            # voxel's log mass sits ~35 deviations out, its spread among centres ~3. A batch
            # norm of the skip gives the dense layer the spread among centres.
            self.centre_norm = nn.BatchNorm1d(config.in_channels)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, config.dense_units),
            nn.ReLU(inplace=True),
            nn.Linear(config.dense_units, 1),
        )

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        features = self.features(crops)
        if self.config.centre_skip:
            centre = self.config.crop_side // 2
            voxel = self.centre_norm(crops[:, :, centre, centre, centre])
            features = torch.cat([features.flatten(1), voxel], dim=1)
        output: torch.Tensor = self.head(features)
        return output


class Dm2galMember(MemberNetwork):
    """``n_members`` independent :class:`Dm2galCNN` s in the task contract's layout, ``(B, M, 1)``.

    As :class:`~darkstack.train.models.unet.UNetMember`
    (:func:`~darkstack.train.models.members.stack_members`): every parameter and batch-norm
    running statistic of :attr:`cnn` holds the M members' tensors concatenated along its first
    dimension (member-major), each member initialised as a lone network (one after the other
    from the torch generator), and the forward runs the members one at a time on their slices
    (the running statistics update in place through the slices). The scalar
    ``num_batches_tracked`` is shared and counts a batch once per member; it only matters to a
    batch norm without momentum, which this network has not. A one-member network is a plain
    :class:`Dm2galCNN` with the state-dict keys of runs saved before ensembles.

    Parameters
    ----------
    config : Dm2galCNNConfig
        Every member's shape.
    n_members : int
        Members M.
    """

    def __init__(self, config: Dm2galCNNConfig, *, n_members: int = 1) -> None:
        super().__init__(n_members=n_members)
        members = [Dm2galCNN(config) for _ in range(n_members)]
        self.cnn = members[0]
        if n_members > 1:
            stack_members(self.cnn, members)

    def make_single(self) -> Dm2galMember:
        return Dm2galMember(self.cnn.config)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        if self.n_members == 1:
            output: torch.Tensor = self.cnn(crops).unsqueeze(1)
            return output
        outputs = stacked_member_outputs(self.cnn, crops, n_members=self.n_members)
        return torch.stack(outputs, dim=1)
