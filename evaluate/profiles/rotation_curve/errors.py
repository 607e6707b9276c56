"""The one exception of the rotation-curve baseline: a galaxy that cannot be fitted."""

from __future__ import annotations


class GalaxyFitError(Exception):
    """One galaxy cannot be analysed; the message is its status."""
