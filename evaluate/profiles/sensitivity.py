"""SmoothGrad sensitivity maps (paper §5.4, Fig 7) with captum.

The sensitivity of output ``y`` to pixel ``x_ij`` is ``|dy/dx_ij|`` (equation 4); SmoothGrad
(Smilkov et al. 2017) averages it over copies of the input with Gaussian noise, which the paper
took from tf-keras-vis and we take from captum's ``NoiseTunnel(Saliency)``.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn


def smoothgrad_maps(
    model: nn.Module,
    images: NDArray[np.float32],
    *,
    radius_index: int,
    member: int = 0,
    n_samples: int = 50,
    noise_fraction: float = 0.15,
    seed: int = 0,
) -> NDArray[np.float32]:
    """SmoothGrad maps of one output radius for each image and channel.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, C, H, W)`` to ``(B, n_members, n_radii)``; used in eval mode.
    images : ndarray, shape (n, C, H, W)
        Normalised inputs.
    radius_index : int
        The output neuron (radius) whose sensitivity is mapped.
    member : int
        Which ensemble member.
    n_samples : int
        Noisy copies per image.
    noise_fraction : float
        Noise standard deviation as a fraction of each image's value range (Smilkov et al.
        recommend 10-20%).
    seed : int
        Seed of the noise.

    Returns
    -------
    ndarray, shape (n, C, H, W)
        Mean absolute gradients.
    """
    from captum.attr import NoiseTunnel, Saliency

    model.eval()

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = model(inputs)[:, member]
        # A heteroscedastic model answers (mean, log-variance) per radius: map the mean's.
        return output[:, 0] if output.ndim == 3 else output

    tunnel = NoiseTunnel(Saliency(forward))
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    maps = []
    for image in images:
        tensor = torch.from_numpy(image[None]).to(device).requires_grad_(True)
        spread = float(image.max() - image.min()) or 1.0
        attribution = tunnel.attribute(
            tensor,
            nt_type="smoothgrad",
            nt_samples=n_samples,
            nt_samples_batch_size=min(n_samples, 16),
            stdevs=noise_fraction * spread,
            target=radius_index,
        )
        maps.append(attribution.detach().cpu().numpy()[0])
    return np.stack(maps).astype(np.float32)
