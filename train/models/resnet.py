"""ResNet50 (He et al. 2015) with a linear regression head, written here for CPU-only torch.

The 50-layer network of He et al. (2015), Table 1: a 7x7 px, stride-2 convolution of 64
kernels, 3x3 px max pooling with stride 2, then bottleneck blocks (1x1, 3x3, 1x1 convolutions,
the last widening by 4) in four stages of [3, 4, 6, 3] blocks with widths 64, 128, 256, 512,
global average pooling and a linear layer of ``n_outputs`` (20 enclosed masses by default).
Batch normalisation follows every convolution; the shortcut is the identity, or a 1x1
convolution with batch normalisation where the shape changes.

As in He et al. and the Keras ResNet50 the paper cites (Chollet et al. 2015), a stage that
halves the resolution does so in the first 1x1 convolution of its first block (torchvision's
"v1.5" strides the 3x3 instead). The convolutions have no bias, being followed by batch
normalisation (Keras keeps them: 26,560 more weights). Convolution weights are drawn as He et al.
prescribe, normal with variance 2 / fan-in. With 8 input channels and 20 outputs the network
has 23,564,692 trainable weights (23.5e6 without the head, as torchvision's ResNet50).

Every network has ``n_members`` independent members (:mod:`darkstack.train.models.members`),
channels member-major and every convolution after the first grouped by member: input
``(B, in_channels, H, W)`` of any size, output ``(B, n_members, n_outputs)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import Tensor, nn

from darkstack.config import Checked
from darkstack.train.config import AtLeastOne
from darkstack.train.models.members import (
    MemberLinear,
    MemberNetwork,
    flatten_members,
    member_conv2d,
)

#: Bottleneck blocks per stage (ResNet50).
BLOCKS_PER_STAGE = (3, 4, 6, 3)
#: Width of the 1x1 and 3x3 convolutions of each stage's bottlenecks.
STAGE_WIDTHS = (64, 128, 256, 512)
#: The last 1x1 convolution of a bottleneck widens its output by this factor.
EXPANSION = 4
STEM_CHANNELS = 64


@dataclass(frozen=True, kw_only=True)
class ResNet50Config(Checked):
    """Settings of a ResNet50.

    Parameters
    ----------
    in_channels : int
        Input channels.
    n_outputs : int
        Linear outputs.
    n_members : int
        Independent members trained as one module.
    """

    in_channels: AtLeastOne
    n_outputs: AtLeastOne = 20
    n_members: AtLeastOne = 1


class Bottleneck(nn.Module):
    """One bottleneck block of every member: 1x1, 3x3, 1x1 convolutions and a shortcut.

    Parameters
    ----------
    in_channels : int
        Input channels of one member.
    width : int
        Channels of the 1x1 and 3x3 convolutions; the block outputs ``4 * width``.
    stride : int
        Stride of the first 1x1 convolution and of the projection shortcut.
    n_members : int
        Number of members; activations hold ``n_members`` times the channels, member-major.
    """

    def __init__(self, *, in_channels: int, width: int, stride: int, n_members: int) -> None:
        super().__init__()
        out_channels = EXPANSION * width
        self.conv1 = member_conv2d(
            in_channels=in_channels,
            out_channels=width,
            kernel_size=1,
            stride=stride,
            n_members=n_members,
            bias=False,
        )
        self.bn1 = nn.BatchNorm2d(n_members * width)
        self.conv2 = member_conv2d(
            in_channels=width,
            out_channels=width,
            kernel_size=3,
            padding=1,
            n_members=n_members,
            bias=False,
        )
        self.bn2 = nn.BatchNorm2d(n_members * width)
        self.conv3 = member_conv2d(
            in_channels=width,
            out_channels=out_channels,
            kernel_size=1,
            n_members=n_members,
            bias=False,
        )
        self.bn3 = nn.BatchNorm2d(n_members * out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                member_conv2d(
                    in_channels=in_channels,
                    out_channels=out_channels,
                    kernel_size=1,
                    stride=stride,
                    n_members=n_members,
                    bias=False,
                ),
                nn.BatchNorm2d(n_members * out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        """Residual ``F(x) + shortcut(x)`` followed by ReLU."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: Tensor = self.relu(out + self.shortcut(x))
        return result


class ResNet50(MemberNetwork):
    """ResNet50 with ``n_members`` independent members and a linear head.

    Parameters
    ----------
    config : ResNet50Config
        The settings.
    """

    def __init__(self, config: ResNet50Config) -> None:
        super().__init__(n_members=config.n_members)
        self.config = config
        members = config.n_members
        self.stem = nn.Sequential(
            member_conv2d(
                in_channels=config.in_channels,
                out_channels=STEM_CHANNELS,
                kernel_size=7,
                stride=2,
                padding=3,
                n_members=members,
                bias=False,
                shared_input=True,
            ),
            nn.BatchNorm2d(members * STEM_CHANNELS),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks: list[nn.Module] = []
        channels = STEM_CHANNELS
        for stage, (n_blocks, width) in enumerate(zip(BLOCKS_PER_STAGE, STAGE_WIDTHS, strict=True)):
            for index in range(n_blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(
                    Bottleneck(in_channels=channels, width=width, stride=stride, n_members=members)
                )
                channels = EXPANSION * width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = MemberLinear(
            in_features=channels, out_features=config.n_outputs, n_members=members
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # fan_in is one group's, i.e. one member's, so every member gets He's variance.
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """Predict ``(B, n_members, n_outputs)`` from images ``x`` of shape ``(B, C, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"resnet50 expects input of shape (batch, {self.config.in_channels}, height, "
                f"width), got {tuple(x.shape)}"
            )
        features = self.pool(self.blocks(self.stem(x)))
        out: Tensor = self.head(flatten_members(features, n_members=self.n_members))
        return out

    def make_single(self) -> ResNet50:
        """A freshly initialised ``n_members=1`` network with this one's other settings."""
        return ResNet50(replace(self.config, n_members=1))
