"""The observation preview: every panel stretched and labelled in its channel's units."""

from __future__ import annotations

import numpy as np
import pytest

from darkstack.features.preview import _stretch


@pytest.mark.parametrize(
    ("channel", "unit", "label"),
    [
        ("sdss_r", "nanomaggies per pixel", "asinh(f / 0.15), f in nanomaggies per pixel"),
        ("hi_mom0", "Jy/beam km/s", "log10 Jy/beam km/s"),
        ("hi_mom1", "km/s", "km/s"),
        ("hi_mom2", "km/s", "km/s"),
    ],
)
def test_each_channel_is_labelled_with_its_unit(channel: str, unit: str, label: str) -> None:
    image = np.zeros((10, 10))
    image[5, 5] = 10.0  # 99th percentile of |image|: 3.07, so asinh softens below 0.15
    image[4, 4] = -3.0
    shown, text, style = _stretch(image, channel=channel, unit=unit)
    assert text == label
    if channel == "hi_mom1":
        assert style["vmin"] == -10.0 and style["vmax"] == 10.0
    if channel == "hi_mom0":
        assert shown.min() == pytest.approx(1.0)  # floored at the detected pixel: log10(10)
