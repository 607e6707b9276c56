"""Matplotlib for figures written to files, shared by every stage that draws one."""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """Return :mod:`matplotlib.pyplot` with the non-interactive Agg backend selected.

    Returns
    -------
    ModuleType
        The :mod:`matplotlib.pyplot` module, drawing with Agg.

    Notes
    -----
    Every figure of the project is saved to a file, on headless cluster nodes and in CI where
    no display exists; Agg renders without one, so it is selected before pyplot is imported
    (an interactive default backend would fail there). Matplotlib is imported here, at the
    first figure, so the stages that draw none never pay for its import.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
