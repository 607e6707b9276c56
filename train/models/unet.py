"""The cluster_mass U-Net (de Andres et al. 2023): maps of a cluster to its projected total mass.

The paper uses "the particular architecture of [32]", the fastMRI U-Net (Zbontar et al.
2018, ``fastmri/models/unet.py``): blocks of two (3x3 convolution without bias,
InstanceNorm2d without affine weights, LeakyReLU(0.2), Dropout2d); ``poolings`` encoder stages,
each a block then 2x2 average pooling, the width doubling from ``channels``; a bottleneck block;
``poolings`` decoder stages, each a 2x2 stride-2 transposed convolution (no bias) with
InstanceNorm and LeakyReLU, concatenation with the encoder's skip and a block; a final 1x1
convolution (with bias) to the output map.

Two ways of taking several views (tSZ, X-ray, stellar mass), ``fusion``:

- ``"early"``: the views are stacked as input channels of one encoder;
- ``"late"``: one encoder per view (one input channel each); their pooled outputs are
  concatenated into the bottleneck and their skips concatenated at each decoder stage, which
  has one decoder. One view makes the two the same network.

fastMRI pads odd sizes; here a side not divisible by ``2**poolings`` is refused instead, so
every skip aligns with its upsampled features without padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn
from torch.nn import functional

from darkstack.config import Checked, Range
from darkstack.train.models.members import MemberNetwork, stack_members, stacked_member_outputs

Fusion = Literal["early", "late"]


@dataclass(frozen=True, kw_only=True)
class UNetConfig(Checked):
    """The U-Net's shape.

    Parameters
    ----------
    n_views : int
        Input maps per sample (1 for a single-view network).
    fusion : {"early", "late"}
        Views stacked as channels of one encoder, or one encoder per view (see the module).
    channels : int
        Channels of the first encoder stage (fastMRI's ``chans``, 32 there); stage ``l`` has
        ``channels * 2**l``, the bottleneck ``channels * 2**poolings``.
    poolings : int
        Encoder stages, each ending in a 2x2 average pooling (fastMRI's ``num_pool_layers``, 4).
    dropout : float
        Dropout2d probability after every convolution of the blocks (fastMRI's ``drop_prob``).
    out_channels : int
        Output maps (1: the projected total mass).
    """

    n_views: Annotated[int, Range(ge=1)] = 1
    fusion: Fusion = "early"
    channels: Annotated[int, Range(ge=1)] = 32
    poolings: Annotated[int, Range(ge=1)] = 4
    dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0
    out_channels: Annotated[int, Range(ge=1)] = 1


def size_problem(height: int, width: int, *, poolings: int) -> str | None:
    """Why a ``height x width`` map cannot pass ``poolings`` poolings, or None if it can."""
    step = 2**poolings
    if height % step == 0 and width % step == 0 and height >= step and width >= step:
        return None
    return (
        f"U-Net input maps are {height}x{width} pixels; expected sides that are multiples of "
        f"2**poolings = {step} (poolings={poolings})"
    )


def _conv_block(inputs: int, outputs: int, *, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel_size=3, padding=1, bias=False),
        nn.InstanceNorm2d(outputs),
        nn.LeakyReLU(negative_slope=0.2, inplace=True),
        nn.Dropout2d(dropout),
        nn.Conv2d(outputs, outputs, kernel_size=3, padding=1, bias=False),
        nn.InstanceNorm2d(outputs),
        nn.LeakyReLU(negative_slope=0.2, inplace=True),
        nn.Dropout2d(dropout),
    )


def _up_block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(inputs, outputs, kernel_size=2, stride=2, bias=False),
        nn.InstanceNorm2d(outputs),
        nn.LeakyReLU(negative_slope=0.2, inplace=True),
    )


class _Encoder(nn.Module):
    """The blocks before each pooling; answers the skips and the last pooled features."""

    def __init__(self, in_channels: int, config: UNetConfig) -> None:
        super().__init__()
        widths = [config.channels * 2**level for level in range(config.poolings)]
        self.blocks = nn.ModuleList(
            _conv_block(inputs, outputs, dropout=config.dropout)
            for inputs, outputs in zip([in_channels, *widths[:-1]], widths, strict=True)
        )

    def forward(self, maps: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = []
        for block in self.blocks:
            maps = block(maps)
            skips.append(maps)
            maps = functional.avg_pool2d(maps, kernel_size=2, stride=2)
        return skips, maps


class UNet(nn.Module):
    """Maps ``(B, n_views, H, W)`` to ``(B, out_channels, H, W)``."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        late = config.fusion == "late"
        encoders = config.n_views if late else 1
        self.encoders = nn.ModuleList(
            _Encoder(1 if late else config.n_views, config) for _ in range(encoders)
        )
        deepest = config.channels * 2 ** (config.poolings - 1)
        self.bottleneck = _conv_block(encoders * deepest, 2 * deepest, dropout=config.dropout)
        widths = [config.channels * 2**level for level in reversed(range(config.poolings))]
        self.ups = nn.ModuleList(_up_block(2 * width, width) for width in widths)
        self.decoders = nn.ModuleList(
            _conv_block((1 + encoders) * width, width, dropout=config.dropout) for width in widths
        )
        self.head = nn.Conv2d(config.channels, config.out_channels, kernel_size=1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        config = self.config
        if maps.ndim != 4 or maps.shape[1] != config.n_views:
            raise ValueError(
                f"U-Net input has shape {tuple(maps.shape)}; expected (batch, {config.n_views}, "
                "height, width)"
            )
        problem = size_problem(int(maps.shape[2]), int(maps.shape[3]), poolings=config.poolings)
        if problem:
            raise ValueError(problem)
        views = maps.split(1, dim=1) if config.fusion == "late" else (maps,)
        encoded = [encoder(view) for encoder, view in zip(self.encoders, views, strict=True)]
        features = self.bottleneck(torch.cat([pooled for _, pooled in encoded], dim=1))
        for level, (up, decoder) in enumerate(zip(self.ups, self.decoders, strict=True)):
            depth = config.poolings - 1 - level
            skips = [skip_list[depth] for skip_list, _ in encoded]
            features = decoder(torch.cat([up(features), *skips], dim=1))
        output: torch.Tensor = self.head(features)
        return output


class UNetMember(MemberNetwork):
    """``n_members`` independent :class:`UNet` s in the task contract's layout, ``(B, M, H, W)``.

    The members follow the member-major layout of :mod:`darkstack.train.models.members`: every
    parameter of :attr:`unet` is the M members' tensors of that parameter concatenated along
    its first dimension (member ``m`` owns rows ``[m * s, (m + 1) * s)``), so the shared
    machinery (early stopping's per-member copy, :func:`~darkstack.train.models.extract_member`)
    handles a U-Net ensemble as any other, and a one-member network is a plain :class:`UNet`
    with the state-dict keys of the runs saved before ensembles. Each member is initialised as
    a lone U-Net (one after the other from the torch generator) and the forward runs the
    members one at a time on their slices, as :func:`~darkstack.train.models.member_by_member`
    does on a CPU: instance norm and the transposed convolutions have no grouped form to batch
    them, and the U-Net keeps no buffers (instance norm without running statistics).

    Parameters
    ----------
    config : UNetConfig
        Every member's shape; ``out_channels`` must be 1 (the output channel is the member axis).
    n_members : int
        Members M.
    """

    def __init__(self, config: UNetConfig, *, n_members: int = 1) -> None:
        if config.out_channels != 1:
            raise ValueError(
                f"UNetMember answers one map; config.out_channels={config.out_channels}"
            )
        super().__init__(n_members=n_members)
        members = [UNet(config) for _ in range(n_members)]
        self.unet = members[0]
        if n_members > 1:
            stack_members(self.unet, members)

    def make_single(self) -> UNetMember:
        return UNetMember(self.unet.config)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        # The output channel is the member axis of the contract's (batch, member, *map).
        if self.n_members == 1:
            output: torch.Tensor = self.unet(maps)
            return output
        outputs = stacked_member_outputs(self.unet, maps, n_members=self.n_members)
        return torch.cat(outputs, dim=1)
