"""darkstack: learn where the dark matter is, from what telescopes can see.

The stages live in subpackages: :mod:`darkstack.universe` (the embedded mock universe),
:mod:`darkstack.ingest`, :mod:`darkstack.features`, :mod:`darkstack.train`,
:mod:`darkstack.catalogs` and :mod:`darkstack.cluster` (the only one that starts clusters).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("darkstack")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
