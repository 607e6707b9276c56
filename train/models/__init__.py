"""The networks of ``darkstack train``: pure modules, built by name from a :class:`ModelConfig`.

The paper's custom CNNs A, B and C (:mod:`~darkstack.train.models.paper_cnn`) and ResNet50
(:mod:`~darkstack.train.models.resnet`), each holding ``n_members`` independent members so a
bootstrap ensemble trains in one pass over the data
(:mod:`~darkstack.train.models.members`). Nothing here knows about data, devices or training:
callers move models with ``.to(device)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from torch import nn

from darkstack.config import Checked, Range, Rule
from darkstack.train.models.members import (
    MemberNetwork,
    check_n_members,
    extract_member,
    mc_dropout,
)
from darkstack.train.models.paper_cnn import (
    KERAS_BN_MOMENTUM,
    PaperCNN,
    PaperCNNConfig,
    image_size_problem,
)
from darkstack.train.models.resnet import ResNet50, ResNet50Config

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "MemberNetwork",
    "ModelConfig",
    "PaperCNN",
    "PaperCNNConfig",
    "ResNet50",
    "ResNet50Config",
    "build_model",
    "count_trainable_parameters",
    "extract_member",
    "mc_dropout",
]

Architecture = Literal["A", "B", "C", "resnet50"]
#: Every architecture :func:`build_model` knows.
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)


@dataclass(frozen=True, kw_only=True)
class ModelConfig(Checked):
    """Which network ``darkstack train`` builds.

    Parameters
    ----------
    architecture : {"A", "B", "C", "resnet50"}
        Tables C1-C3 of de los Rios et al. (2023) or ResNet50; B is the paper's benchmark.
    n_outputs : int
        Linear outputs (20 enclosed masses in the paper).
    image_size : int
        Side of the square input images in pixels; A, B and C need it to size their first
        dense layer, ResNet50 takes any size.
    batchnorm_momentum, width_fraction, dropout_fraction : float
        A, B and C only: see :class:`~darkstack.train.models.paper_cnn.PaperCNNConfig`
        (defaults: the paper's network).
    """

    architecture: Architecture = "B"
    n_outputs: Annotated[int, Range(ge=1)] = 20
    image_size: Annotated[int, Range(ge=1)] = 128
    batchnorm_momentum: Annotated[float, Range(gt=0, le=1)] = KERAS_BN_MOMENTUM
    width_fraction: Annotated[float, Range(gt=0, le=1)] = 1.0
    dropout_fraction: Annotated[float, Range(ge=0, lt=1)] | None = None

    RULES = (Rule("image_size", image_size_problem),)


def build_model(config: ModelConfig, *, in_channels: int, n_members: int = 1) -> MemberNetwork:
    """Build the network ``config`` names, freshly initialised.

    Parameters
    ----------
    config : ModelConfig
        Architecture, outputs and image size.
    in_channels : int
        Channels of the input images.
    n_members : int
        Independent members trained as one module (1 for a single network).

    Returns
    -------
    MemberNetwork
        A module mapping ``(B, in_channels, H, W)`` to ``(B, n_members, n_outputs)``.

    Raises
    ------
    ValueError
        For an unknown architecture, or a size the architecture cannot take.
    """
    check_n_members(n_members)
    if config.architecture == "resnet50":
        return ResNet50(
            ResNet50Config(in_channels=in_channels, n_outputs=config.n_outputs, n_members=n_members)
        )
    if config.architecture in ("A", "B", "C"):
        return PaperCNN(
            PaperCNNConfig(
                architecture=config.architecture,
                in_channels=in_channels,
                image_size=config.image_size,
                n_outputs=config.n_outputs,
                n_members=n_members,
                batchnorm_momentum=config.batchnorm_momentum,
                width_fraction=config.width_fraction,
                dropout_fraction=config.dropout_fraction,
            )
        )
    raise ValueError(
        f"unknown architecture {config.architecture!r}; known architectures: "
        f"{', '.join(ARCHITECTURES)}"
    )


def count_trainable_parameters(model: nn.Module) -> int:
    """Number of scalar weights of ``model`` that require gradients (all members together)."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
