"""The custom CNNs A, B and C of de los Rios et al. (2023), Tables C1-C3.

Each convolution is 5x5 px with a 2 px stride (C's last one 3x3 px, stride 1) and a ReLU,
followed by the rows the table lists after it, in the table's order: 2x2 max pooling, dropout
(25 per cent in A, 50 per cent in B and C; elementwise like Keras ``Dropout``) and batch
normalisation. The dense part is Dense + ReLU, dropout, batch normalisation per row (256, 128,
64 units in A and B; 256, 64 in C) and a linear output layer (20 enclosed masses by default).

Padding. The paper's networks are Keras models, whose convolution and pooling layers default to
``'valid'`` padding; with it, 8 input channels and 128x128 px images, the trainable-weight
counts are A 704,532, B 1,343,892 and C 2,237,204, matching the tables' ~7e5, ~1.3e6 and
~2.2e6 (``'same'`` padding would give A 8.0e5 and B 2.1e6). So every layer here is unpadded.

Table C2 (B) lost its first row in the text extraction: it starts with a max pooling. The
missing row is taken to be a convolution of 64 kernels, 5x5 px, stride 2, ReLU, as the first
row of A and C: with it B has 1.34e6 weights, matching the stated ~1.3e6 (32 kernels would give
1.24e6, 128 kernels 1.56e6).

Batch normalisation uses Keras's defaults, as the paper's networks did: eps 1e-3 and running
statistics that keep 0.99 of their value per step (PyTorch ``momentum=0.01``; a setting,
``batchnorm_momentum``: a run of a few epochs on ~100 galaxies takes a few dozen steps, too
few for running statistics that keep 0.99 to leave their initial values, so its evaluation-mode
outputs barely depend on the input). PyTorch's own
0.1 lets the last few batches set the evaluation statistics, and with dropout before every
normalisation the validation loss then jumps from epoch to epoch, which misleads early stopping.
Choices the tables leave open: PyTorch's default initialisation, and a flattening order of
channels before pixels (Keras flattens pixels first, which only permutes the first dense
layer's inputs).

Every network has ``n_members`` independent members (:mod:`darkstack.train.models.members`):
input ``(B, in_channels, image_size, image_size)``, output ``(B, n_members, n_outputs)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from torch import Tensor, nn

from darkstack.config import Checked, Range, Rule
from darkstack.train.config import AtLeastOne
from darkstack.train.models.members import (
    MemberBatchNorm1d,
    MemberLinear,
    MemberNetwork,
    flatten_members,
    member_by_member,
    member_conv2d,
    runs_member_by_member,
)

PaperArchitecture = Literal["A", "B", "C"]
#: Side of the max-pooling window and its stride, in pixels (Keras ``MaxPooling2D(2)``).
POOL_PX = 2
#: Keras's BatchNormalization defaults, in PyTorch's convention (momentum = 1 - 0.99).
KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.01


@dataclass(frozen=True, kw_only=True)
class ConvStage:
    """A convolution row of Tables C1-C3 with the pooling and dropout rows after it.

    Batch normalisation follows every convolution in all three tables.

    Parameters
    ----------
    out_channels : int
        Number of kernels.
    kernel_px, stride_px : int
        Kernel side and stride in pixels.
    pool : bool
        Whether a 2x2 px max pooling follows.
    dropout : bool
        Whether a dropout row follows.
    """

    out_channels: int
    kernel_px: int
    stride_px: int
    pool: bool
    dropout: bool


@dataclass(frozen=True, kw_only=True)
class PaperSpec:
    """One of Tables C1-C3.

    Parameters
    ----------
    conv : tuple of ConvStage
        The convolution stages, input first.
    dense_units : tuple of int
        Units of the hidden dense layers (each followed by ReLU, dropout, batch norm).
    dropout_fraction : float
        Fraction of activations every dropout row zeroes.
    """

    conv: tuple[ConvStage, ...]
    dense_units: tuple[int, ...]
    dropout_fraction: float


_FIRST = ConvStage(out_channels=64, kernel_px=5, stride_px=2, pool=True, dropout=True)

#: Tables C1-C3; B's first stage is inferred (see the module docstring).
PAPER_SPECS: dict[str, PaperSpec] = {
    "A": PaperSpec(
        conv=(
            _FIRST,
            ConvStage(out_channels=128, kernel_px=5, stride_px=2, pool=True, dropout=True),
            ConvStage(out_channels=128, kernel_px=5, stride_px=2, pool=True, dropout=True),
        ),
        dense_units=(256, 128, 64),
        dropout_fraction=0.25,
    ),
    "B": PaperSpec(
        conv=(
            _FIRST,
            ConvStage(out_channels=128, kernel_px=5, stride_px=2, pool=True, dropout=True),
            ConvStage(out_channels=256, kernel_px=5, stride_px=2, pool=False, dropout=False),
        ),
        dense_units=(256, 128, 64),
        dropout_fraction=0.5,
    ),
    "C": PaperSpec(
        conv=(
            _FIRST,
            ConvStage(out_channels=128, kernel_px=5, stride_px=2, pool=False, dropout=True),
            ConvStage(out_channels=256, kernel_px=5, stride_px=2, pool=False, dropout=True),
            ConvStage(out_channels=256, kernel_px=3, stride_px=1, pool=False, dropout=True),
        ),
        dense_units=(256, 64),
        dropout_fraction=0.5,
    ),
}


def feature_map_px(*, architecture: PaperArchitecture, image_size: int) -> int:
    """Side in pixels of the last feature map for square ``image_size`` px inputs.

    Parameters
    ----------
    architecture : {"A", "B", "C"}
        The table.
    image_size : int
        Side of the input images in pixels.

    Returns
    -------
    int
        The side, or 0 if the image is too small for some unpadded layer.
    """
    side = image_size
    for stage in PAPER_SPECS[architecture].conv:
        if side < stage.kernel_px:
            return 0
        side = (side - stage.kernel_px) // stage.stride_px + 1
        if stage.pool:
            side //= POOL_PX
    return side


def image_size_problem(config: Any) -> str | None:
    """What ``config.image_size`` must be for ``config.architecture`` (None when it fits).

    ResNet50 pools its maps to any size; A, B and C shrink the image with unpadded
    convolutions and poolings, which need at least :func:`min_image_size` pixels.
    """
    if config.architecture not in PAPER_SPECS:
        return None
    if feature_map_px(architecture=config.architecture, image_size=config.image_size) >= 1:
        return None
    return f">= {min_image_size(config.architecture)} px for architecture {config.architecture}"


def min_image_size(architecture: PaperArchitecture) -> int:
    """Smallest square input, in pixels, that survives every unpadded layer of ``architecture``."""
    size = 1
    while feature_map_px(architecture=architecture, image_size=size) < 1:
        size += 1
    return size


@dataclass(frozen=True, kw_only=True)
class PaperCNNConfig(Checked):
    """Settings of one paper CNN.

    Parameters
    ----------
    architecture : {"A", "B", "C"}
        Which table (B is the paper's benchmark).
    in_channels : int
        Input channels (the paper stacks up to 5 SDSS bands and 3 HI moment maps).
    image_size : int
        Side of the square input images in pixels (128 in the paper).
    n_outputs : int
        Linear outputs (20 enclosed masses in the paper).
    n_members : int
        Independent members trained as one module.
    batchnorm_momentum : float
        Weight of each batch in the running statistics, PyTorch's convention (0.01: Keras's
        0.99, the paper's; 0.1: PyTorch's default).
    width_fraction : float
        Multiplies every layer's kernels and units (1: the table's; smaller: a lighter
        network of the same shape, for small training sets).
    dropout_fraction : float, optional
        Replaces the table's dropout fraction (None: the table's). Dropout before every batch
        normalisation makes its running variance that of dropped-out activations, larger than
        in evaluation, so evaluation-mode features shrink layer after layer (Li et al. 2019,
        CVPR, "variance shift"); at B's 0.5 a small network's outputs barely vary.
    """

    architecture: PaperArchitecture = "B"
    in_channels: AtLeastOne
    image_size: AtLeastOne = 128
    n_outputs: AtLeastOne = 20
    n_members: AtLeastOne = 1
    batchnorm_momentum: Annotated[float, Range(gt=0, le=1)] = KERAS_BN_MOMENTUM
    width_fraction: Annotated[float, Range(gt=0, le=1)] = 1.0
    dropout_fraction: Annotated[float, Range(ge=0, lt=1)] | None = None

    RULES = (Rule("image_size", image_size_problem),)


class PaperCNN(MemberNetwork):
    """Architecture A, B or C with ``n_members`` independent members.

    Parameters
    ----------
    config : PaperCNNConfig
        The settings.
    """

    def __init__(self, config: PaperCNNConfig) -> None:
        super().__init__(n_members=config.n_members)
        self.config = config
        spec = PAPER_SPECS[config.architecture]
        members = config.n_members
        momentum = config.batchnorm_momentum
        dropout = spec.dropout_fraction
        if config.dropout_fraction is not None:
            dropout = config.dropout_fraction
        layers: list[nn.Module] = []
        channels = config.in_channels
        for index, stage in enumerate(spec.conv):
            out_channels = _scaled(stage.out_channels, config.width_fraction)
            layers += [
                member_conv2d(
                    in_channels=channels,
                    out_channels=out_channels,
                    kernel_size=stage.kernel_px,
                    stride=stage.stride_px,
                    n_members=members,
                    shared_input=index == 0,
                ),
                nn.ReLU(),
            ]
            if stage.pool:
                layers.append(nn.MaxPool2d(POOL_PX))
            if stage.dropout:
                layers.append(nn.Dropout(dropout))
            layers.append(
                nn.BatchNorm2d(members * out_channels, eps=KERAS_BN_EPS, momentum=momentum)
            )
            channels = out_channels
        self.features = nn.Sequential(*layers)

        side = feature_map_px(architecture=config.architecture, image_size=config.image_size)
        width = channels * side * side
        dense: list[nn.Module] = []
        for table_units in spec.dense_units:
            units = _scaled(table_units, config.width_fraction)
            dense += [
                MemberLinear(in_features=width, out_features=units, n_members=members),
                nn.ReLU(),
                nn.Dropout(dropout),
                MemberBatchNorm1d(
                    num_features=units,
                    n_members=members,
                    eps=KERAS_BN_EPS,
                    momentum=momentum,
                ),
            ]
            width = units
        dense.append(
            MemberLinear(in_features=width, out_features=config.n_outputs, n_members=members)
        )
        self.head = nn.Sequential(*dense)

    def forward(self, x: Tensor) -> Tensor:
        """Predict ``(B, n_members, n_outputs)`` from images ``x`` of shape ``(B, C, H, W)``."""
        expected = (self.config.in_channels, self.config.image_size, self.config.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"architecture {self.config.architecture} expects input of shape "
                f"(batch, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        if self.n_members > 1 and x.device.type == "cpu" and runs_member_by_member(self.features):
            maps = member_by_member(self.features, x, n_members=self.n_members)
        else:
            maps = self.features(x)
        features = flatten_members(maps, n_members=self.n_members)
        out: Tensor = self.head(features)
        return out

    def make_single(self) -> PaperCNN:
        """A freshly initialised ``n_members=1`` network with this one's other settings."""
        return PaperCNN(replace(self.config, n_members=1))


def _scaled(count: int, fraction: float) -> int:
    """A layer's kernels or units times ``fraction``, at least one."""
    return max(1, round(count * fraction))
