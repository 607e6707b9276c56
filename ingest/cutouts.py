"""Particle cutouts: conversion to darkstack's units and one file per galaxy.

A source's particle reader (:mod:`darkstack.ingest.sources`) returns a galaxy's particles as
TNG stores them; :func:`to_canonical` converts them to physical units centred on the galaxy and
:func:`write_cutout` writes them. The cutout of a galaxy (``STORE/cutouts/subhalo_NNNNNNNN.hdf5``)
holds groups ``gas``, ``dm`` and ``stars``, particles sorted by ID, in physical units relative to
the galaxy (positions in kpc from the potential minimum, velocities in km/s relative to the
subhalo), with a boolean ``in_subhalo`` marking the galaxy's own bound particles; everything else
in the sphere is a neighbour. Wind-phase cells (negative formation time) are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from darkstack.cosmology import stellar_age_gyr
from darkstack.gas import hi_mass_msun
from darkstack.hdf5 import atomic_hdf5
from darkstack.ingest.sources import KINDS, SimulationInfo
from darkstack.store import CUTOUT_UNITS
from darkstack.units import temperature_k

#: Kernel support over the cell radius (3V/4pi)^(1/3), as MARTINI's TNG source sets it.
SMOOTHING_LENGTH_PER_CELL_RADIUS = 2.5


def particles_in_spheres(
    positions: NDArray[np.floating[Any]],
    centres: NDArray[np.floating[Any]],
    radius: float,
    box_size: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(sphere, particle) index pairs of particles within ``radius`` of each centre, periodic.

    Parameters
    ----------
    positions : ndarray, shape (n, 3)
        Particle positions in [0, box_size) (wrapped here if a coordinate equals the box).
    centres : ndarray, shape (m, 3)
        Sphere centres.
    radius : float
        Sphere radius, same units.
    box_size : float
        Side of the periodic box.

    Returns
    -------
    sphere, particle : ndarray of int64
        Sorted by sphere, then particle.
    """
    if len(positions) == 0 or len(centres) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    tree = cKDTree(np.mod(positions, box_size), boxsize=box_size)
    hits = tree.query_ball_point(np.mod(centres, box_size), r=radius, return_sorted=True)
    counts = np.array([len(hit) for hit in hits], dtype=np.int64)
    sphere = np.repeat(np.arange(len(centres), dtype=np.int64), counts)
    particle = (
        np.concatenate([np.asarray(hit, dtype=np.int64) for hit in hits])
        if counts.sum()
        else np.zeros(0, dtype=np.int64)
    )
    return sphere, particle


def to_canonical(
    kind: str,
    raw: Mapping[str, np.ndarray],
    *,
    in_subhalo: NDArray[np.bool_],
    centre: Sequence[float],
    velocity_kms: Sequence[float],
    info: SimulationInfo,
) -> dict[str, np.ndarray]:
    """TNG fields of one kind -> darkstack's physical, galaxy-centred cutout fields.

    Parameters
    ----------
    kind : {"gas", "dm", "stars"}
        Particle kind.
    raw : mapping
        The snapshot fields of :data:`~darkstack.ingest.sources.RAW_FIELDS` in TNG code units
        (the scale factor and h of ``info.units``), any order.
    in_subhalo : ndarray of bool
        Which particles belong to the galaxy's own subhalo.
    centre : sequence of float
        The galaxy's potential minimum (SubhaloPos), code units.
    velocity_kms : sequence of float
        The subhalo's velocity (SubhaloVel), peculiar km/s.
    info : SimulationInfo
        Box size, units, the DM particle mass and the cosmology of the snapshot.
    """
    units = info.units
    order = np.argsort(raw["ParticleIDs"], kind="stable")
    values = {field: np.asarray(array)[order] for field, array in raw.items()}
    delta = values["Coordinates"].reshape(-1, 3) - np.asarray(centre)
    delta -= info.box_size * np.round(delta / info.box_size)
    out: dict[str, np.ndarray] = {
        "particle_id": values["ParticleIDs"].astype(np.uint64),
        "position_kpc": units.length_to_kpc(delta),
        "velocity_kms": units.particle_velocity_to_kms(values["Velocities"].reshape(-1, 3))
        - np.asarray(velocity_kms),
        "in_subhalo": np.asarray(in_subhalo, dtype=bool)[order],
    }
    if kind == "dm":
        out["mass_msun"] = np.full(len(order), float(units.mass_to_msun(info.mass_table[1])))
        return out
    out["mass_msun"] = units.mass_to_msun(values["Masses"])
    out["metallicity"] = values["GFM_Metallicity"].astype(np.float64)
    if kind == "stars":
        formation = values["GFM_StellarFormationTime"].astype(np.float64)
        keep = formation > 0  # wind-phase cells carry a negative formation time
        out["initial_mass_msun"] = units.mass_to_msun(values["GFM_InitialMass"])
        out["formation_scale_factor"] = formation
        out["age_gyr"] = np.where(
            keep,
            stellar_age_gyr(
                np.where(keep, formation, 1.0),
                snapshot_scale_factor=units.scale_factor,
                params=info.cosmology,
            ),
            np.nan,
        )
        return {field: array[keep] for field, array in out.items()}
    density = units.density_to_msun_per_kpc3(values["Density"])
    temperature = temperature_k(values["InternalEnergy"], values["ElectronAbundance"])
    cell_radius = np.cbrt(3.0 * out["mass_msun"] / (4.0 * np.pi * density))
    out |= {
        "density_msun_per_kpc3": density,
        "temperature_k": temperature,
        "electron_abundance": values["ElectronAbundance"].astype(np.float64),
        "neutral_hydrogen_fraction": values["NeutralHydrogenAbundance"].astype(np.float64),
        "hi_mass_msun": hi_mass_msun(
            mass_msun=out["mass_msun"],
            neutral_hydrogen_abundance=values["NeutralHydrogenAbundance"],
            density_msun_per_kpc3=density,
            temperature_k=temperature,
            electron_abundance=values["ElectronAbundance"],
        ),
        "sfr_msun_yr": values["StarFormationRate"].astype(np.float64),
        "cell_radius_kpc": cell_radius,
        "smoothing_length_kpc": SMOOTHING_LENGTH_PER_CELL_RADIUS * cell_radius,
    }
    return out


def write_cutout(
    path: Path, particles: Mapping[str, Mapping[str, np.ndarray]], *, attributes: Mapping[str, Any]
) -> None:
    """Write one galaxy's cutout atomically (float32 kinematics, float64 masses)."""
    with atomic_hdf5(path) as file:
        for key, value in attributes.items():
            file.attrs[key] = value
        file.attrs["units"] = json.dumps(CUTOUT_UNITS, sort_keys=True)
        for kind, fields in particles.items():
            group = file.create_group(kind)
            for name in sorted(fields):
                values = np.asarray(fields[name])
                if name in ("position_kpc", "velocity_kms"):
                    values = values.astype(np.float32)
                group.create_dataset(name, data=values, track_times=False)


def read_cutout(path: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """One galaxy's particles and attributes; costs in proportion to that galaxy."""
    with h5py.File(path, "r") as file:
        particles = {
            kind: {name: file[kind][name][()] for name in file[kind]}
            for kind in KINDS
            if kind in file
        }
        return particles, dict(file.attrs.items())
