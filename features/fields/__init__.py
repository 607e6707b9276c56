"""Voxel fields of whole simulation boxes and their statistics (issue 17), on Dask.

``darkstack fields`` deposits particles and subhalos of a hydro run and its gravity-only twin
onto 3D grids in ``STORE/fields.zarr``; ``darkstack spectra`` measures power spectra,
cross-power, bispectra and voxel PDFs of those fields with a distributed FFT. Modules:

- :mod:`~darkstack.features.fields.layout`: the fields' variables, units and conventions
  (their paths and the spectra catalog are :mod:`darkstack.store`'s);
- :mod:`~darkstack.features.fields.config`: the build's and the measurement's settings;
- :mod:`~darkstack.features.fields.sources`: reading simulation chunks into positions and
  masses;
- :mod:`~darkstack.features.fields.tiles`: the pure per-chunk kernels (tiling, bucketing);
- :mod:`~darkstack.features.fields.build`: the Dask graph of a build and its zarr writes;
- :mod:`~darkstack.features.fields.fft`: the distributed 3D real FFT by pencils;
- :mod:`~darkstack.features.fields.spectra`: P(k), cross-power, bispectrum and PDF.
"""
