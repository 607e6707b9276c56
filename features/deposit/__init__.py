"""Particle-to-grid deposits shared by every map and field maker.

One concept per module: ``mesh`` (NGP/CIC/TSC mass assignment on 2D and 3D grids, per-chunk
numba kernels) and ``sph`` (adaptive smoothing lengths and SPH-kernel images).
"""
