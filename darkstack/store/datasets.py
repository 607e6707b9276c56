"""Opening the store's zarr datasets, checked against their schema first."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from darkstack.store.layout import StoreLayout
from darkstack.store.schema import ZarrSpec

if TYPE_CHECKING:
    import xarray as xr


def open_group(store: str | os.PathLike[str], spec: ZarrSpec) -> Any:
    """The dataset ``spec`` of ``store`` as a read-only zarr group (see :meth:`ZarrSpec.check`)."""
    return spec.check(StoreLayout(store).zarr(spec.name))


def open_dataset(store: str | os.PathLike[str], spec: ZarrSpec) -> xr.Dataset:
    """The dataset ``spec`` of ``store`` as a lazy xarray Dataset, once it passed its check."""
    import xarray as xr

    path = StoreLayout(store).zarr(spec.name)
    spec.check(path)
    return xr.open_zarr(path, consolidated=False)
