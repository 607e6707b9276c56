"""The shared pyplot: Agg selected whatever backend was active, figures written to PNG files."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg

from darkstack.plotting import pyplot


def test_pyplot_selects_agg_over_another_backend() -> None:
    matplotlib.use("svg")
    assert matplotlib.get_backend().lower() == "svg"

    plt = pyplot()

    assert plt is sys.modules["matplotlib.pyplot"]
    assert matplotlib.get_backend().lower() == "agg"


def test_pyplot_figure_saves_a_png_of_the_requested_size(tmp_path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2.0, 1.0))
    assert type(fig.canvas) is FigureCanvasAgg
    ax.plot([0.0, 1.0], [0.0, 1.0])
    path = tmp_path / "figure.png"
    fig.savefig(path, dpi=10)
    plt.close(fig)

    data = path.read_bytes()
    # The PNG signature, then the IHDR chunk's big-endian width and height (bytes 16-24).
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (20, 10)
