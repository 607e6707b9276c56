"""The mixture-density CNN of Exposito-Marquez et al. (2022) for a dwarf's inner DM slope.

Two 64x64 probability maps of the stars (projected positions ``xy`` and radius-velocity
``rv``) go through one convolutional branch each; the flattened branches are concatenated and
dense layers give the six parameters of a two-component 1D Gaussian mixture: weights by a
softmax, means as they are, widths by a softplus. The loss is the mixture's negative
log-likelihood of the true slope (:func:`mixture_nll`), and the posterior is the normalised
mean of the mixture densities of ``n_passes`` forward passes with dropout left on
(:func:`mc_dropout_density`; Gal & Ghahramani 2016).

The paper does not give layer sizes or the optimiser; the choices here are settings of
:class:`MDCNNConfig` (3 convolutions of 3x3 px with 16, 32, 64 kernels, each with ReLU and
2x2 max pooling; dense layers of 256 and 64 units with dropout 0.2). ``n_scalars`` numbers per
sample (the scales the maps divide out, the stellar mass; none in the paper) may join the
flattened branches before the dense layers.

Shapes follow the training loop's member convention: input ``(B, 2, S, S)``, output
``(B, 1, 3 * n_components)`` as ``[logits, means, raw widths]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import Tensor, nn
from torch.nn import functional

from darkstack.config import Checked, Range, Rule

#: Widths of a stack of layers (kernels or units), each at least one.
Widths = Annotated[tuple[int, ...], Range(ge=1)]
#: Probability of dropping a unit; 1 would drop them all.
Dropout = Annotated[float, Range(ge=0, lt=1)]
#: Gaussian components of a mixture density.
Components = Annotated[int, Range(ge=1)]

#: Smallest mixture width, so the likelihood of a point mass cannot diverge.
MIN_SIGMA = 1.0e-3


@dataclass(frozen=True, kw_only=True)
class MDCNNConfig(Checked):
    """Architecture of :class:`MDCNN`.

    Parameters
    ----------
    image_size : int
        Side of each map in pixels (64 in the paper).
    n_maps : int
        Maps, one branch each (xy and rv).
    conv_channels : tuple of int
        Kernels of each convolution of a branch (3x3, ReLU, 2x2 max pooling).
    dense_units : tuple of int
        Units of the dense layers after the branches are concatenated.
    dropout : float
        Dropout after each dense layer; kept on for MC-dropout.
    n_components : int
        Gaussian components of the output mixture.
    n_scalars : int
        Numbers per sample concatenated to the branches' features (0: maps only, the paper).
    """

    image_size: Annotated[int, Range(ge=1)] = 64
    n_maps: Annotated[int, Range(ge=1)] = 2
    conv_channels: Widths = (16, 32, 64)
    dense_units: Widths = (256, 64)
    dropout: Dropout = 0.2
    n_components: Components = 2
    n_scalars: Annotated[int, Range(ge=0)] = 0

    RULES = (
        # Each convolution block halves the maps with a 2x2 pooling.
        Rule(
            "image_size",
            lambda c: (
                f"divisible by 2^{len(c.conv_channels)} (one 2x2 pooling per conv_channels entry)"
                if c.image_size % 2 ** len(c.conv_channels)
                else None
            ),
        ),
    )


def _branch(config: MDCNNConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 1
    for out in config.conv_channels:
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    return nn.Sequential(*layers, nn.Flatten())


class MDCNN(nn.Module):
    """Branch per map, concatenated, dense layers, mixture parameters (see the module doc)."""

    def __init__(self, config: MDCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.branches = nn.ModuleList(_branch(config) for _ in range(config.n_maps))
        side = config.image_size // 2 ** len(config.conv_channels)
        width = config.n_maps * config.conv_channels[-1] * side * side + config.n_scalars
        dense: list[nn.Module] = []
        for units in config.dense_units:
            dense += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(config.dropout)]
            width = units
        self.dense = nn.Sequential(*dense, nn.Linear(width, 3 * config.n_components))

    def forward(self, images: Tensor, scalars: Tensor | None = None) -> Tensor:
        """Raw mixture parameters ``(B, 1, 3 K)``; see :func:`mixture_parameters`."""
        return self.head(self.features(images, scalars))

    def features(self, images: Tensor, scalars: Tensor | None = None) -> Tensor:
        """The concatenated branch outputs and ``scalars`` ``(B, n_scalars)``, ``(B, F)`` (no
        dropout: the same in every pass)."""
        branches = [branch(images[:, i : i + 1]) for i, branch in enumerate(self.branches)]
        given = 0 if scalars is None else scalars.shape[1]
        if given != self.config.n_scalars:
            raise ValueError(f"the network takes {self.config.n_scalars} scalars, got {given}")
        return torch.cat(branches if scalars is None else [*branches, scalars], dim=1)

    def head(self, features: Tensor) -> Tensor:
        """Raw mixture parameters ``(B, 1, 3 K)`` of :meth:`features`; dropout acts here."""
        out: Tensor = self.dense(features).unsqueeze(1)
        return out


def mixture_parameters(outputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(weights, means, sigmas), each ``(..., K)``, from raw outputs ``(..., 3 K)``.

    Weights are a softmax of the logits, sigmas a softplus of the raw widths plus
    :data:`MIN_SIGMA`.
    """
    logits, means, raw = outputs.chunk(3, dim=-1)
    return torch.softmax(logits, dim=-1), means, functional.softplus(raw) + MIN_SIGMA


def mixture_nll(outputs: Tensor, targets: Tensor) -> Tensor:
    """Negative log-likelihood of the targets under each member's mixture, ``(B, M)``.

    Parameters
    ----------
    outputs : tensor (B, M, 3 K)
        Raw mixture parameters (:class:`MDCNN`'s output).
    targets : tensor (B,) or (B, 1)
        The true slopes.
    """
    logits, means, raw = outputs.chunk(3, dim=-1)
    sigma = functional.softplus(raw) + MIN_SIGMA
    y = targets.reshape(-1, 1, 1)
    log_component = (
        -0.5 * ((y - means) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2.0 * math.pi)
    )
    return -torch.logsumexp(torch.log_softmax(logits, dim=-1) + log_component, dim=-1)


def mixture_density(outputs: Tensor, grid: Tensor) -> Tensor:
    """Mixture density on ``grid`` ``(G,)`` for each row of outputs ``(..., 3 K)``: ``(..., G)``."""
    weights, means, sigma = mixture_parameters(outputs)
    z = (grid.reshape(*([1] * (outputs.dim() - 1)), -1, 1) - means.unsqueeze(-2)) / sigma.unsqueeze(
        -2
    )
    component = torch.exp(-0.5 * z**2) / (sigma.unsqueeze(-2) * math.sqrt(2.0 * math.pi))
    return (weights.unsqueeze(-2) * component).sum(dim=-1)


@torch.no_grad()
def mc_dropout_density(
    model: MDCNN,
    images: Tensor,
    grid: Tensor,
    *,
    scalars: Tensor | None = None,
    n_passes: int = 100,
) -> tuple[Tensor, Tensor]:
    """MC-dropout posterior on ``grid``: the normalised mean of ``n_passes`` pass densities.

    Dropout stays on (the model is put in training mode for the passes and restored after).

    Returns
    -------
    mean : tensor (B, G)
        The posterior density, integrating to 1 over ``grid``.
    passes : tensor (n_passes, B, G)
        Each pass's density (for the band of the figures).
    """
    was_training = model.training
    model.train()
    try:
        # Dropout sits in the dense head only, so the branches (~90% of a pass's cost) run once.
        features = model.features(images, scalars)
        passes = torch.stack(
            [mixture_density(model.head(features)[:, 0], grid) for _ in range(n_passes)]
        )
    finally:
        model.train(was_training)
    mean = passes.mean(dim=0)
    return mean / torch.trapezoid(mean, grid, dim=-1).unsqueeze(-1), passes
