"""Client of the IllustrisTNG public web API, for users without a local TNG mirror.

Ingest reads a local TNG basePath with illustris_python; :class:`TNGWebAPI` fetches the same
catalog rows and particle cutouts from https://www.tng-project.org/api/ instead, caching every
response on disk so a rerun (or another Dask worker sharing the folder) makes no request.

Endpoints used (``{sim}`` e.g. ``TNG100-1``, paths relative to the base URL)::

    {sim}/                                            simulation metadata (JSON)
    {sim}/snapshots/{snap}/subhalos/{id}/             one subhalo's catalog fields (JSON)
    {sim}/snapshots/{snap}/subhalos/?mass_stars__gt=X search, paginated (JSON)
    {sim}/snapshots/{snap}/subhalos/{id}/cutout.hdf5  the subhalo's particles (HDF5)
    {sim}/snapshots/{snap}/halos/{id}/cutout.hdf5     the FoF group's particles (HDF5)
    {sim}/files/groupcat-{snap}/?Subhalo=F1,F2        a field subset of the group catalog (HDF5)

What public material confirms (the API documentation's getting-started guide, answers of the TNG
maintainers on the TNG forum, and public scripts that call the API):

- the key travels in the ``api-key`` request header; JSON is returned without asking for it;
- subhalo fields are TNG catalog names in lower case without the ``Subhalo`` prefix, vectors
  split into ``_x/_y/_z`` and per-type arrays into ``_gas/_dm/_stars/_bhs`` (``mass_stars``,
  ``len_stars``, ``pos_x``, ``halfmassrad_stars``, ``sfrinrad``, ``massinrad_stars``, ``grnr``),
  in the code units of the files, plus ``id``, ``snap``, ``primary_flag``, ``mass_log_msun``
  and link objects ``related``, ``cutouts`` (``subhalo``, ``parent_halo``), ``trees``,
  ``supplementary_data``, ``vis``, ``meta``;
- search takes ``field__gt``/``__gte``/``__lt``/``__lte`` and exact ``field=value`` filters and
  ``limit``/``offset``, and answers ``{count, next, previous, results}`` whose results hold
  ``id``, ``url``, ``sfr`` and ``mass_log_msun`` only (details need one request each);
- cutout queries name fields per particle type, ``gas=Coordinates,Masses&stars=all``;
- ``files/groupcat-{snap}/?Group=Group_M_Crit200`` returns a field subset of the catalog;
  public code reports it times out (HTTP 504) for TNG50-1's 5.7 million subhalos.

What is assumed and should be checked against the live API before relying on it:

- status codes: 401 or 403 for a missing or wrong key, 404 for an object that does not exist,
  429 (with ``Retry-After``) when rate-limited;
- the particle type names ``tracers`` and ``bhs`` in cutout queries;
- the layout of the group-catalog subset file (taken to be ``Header`` plus ``Subhalo/<field>``
  and ``Group/<field>`` holding the whole catalog, all chunks concatenated);
- the API names of catalog fields not listed above, derived by the naming rule (in particular
  ``subhaloflag``);
- the cutout ``Header``: public scripts add ``Time``, ``HubbleParam``, ``MassTable`` and
  ``NumPart_ThisFile`` to downloaded cutouts, so take cosmology and the dark-matter particle
  mass (``mass_dm``) from :meth:`TNGWebAPI.simulation_info`, not from the cutout.

Responses are read into memory before they are stored, so a cutout must fit in memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import h5py
import urllib3
from urllib3.util.retry import Retry

from darkstack import __version__
from darkstack.errors import DarkstackError, InputError

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.tng-project.org/api/"
API_KEY_ENV_VAR = "TNG_API_KEY"
#: Where users get a key (shown when none is configured).
_REGISTER_URL = "https://www.tng-project.org/users/register/"

#: Particle types as cutout queries name them, with TNG's PartType numbers.
CUTOUT_PARTICLE_TYPES: Mapping[str, int] = MappingProxyType(
    {"gas": 0, "dm": 1, "tracers": 3, "stars": 4, "bhs": 5}
)
#: Suffixes of the per-type columns of ``*Type`` catalog fields (types 2 and 3 have none).
_TYPE_SUFFIXES: Mapping[int, str] = MappingProxyType({0: "gas", 1: "dm", 4: "stars", 5: "bhs"})
_AXES = ("x", "y", "z")

_SCALARS = {
    "SubhaloBHMass": "bhmass",
    "SubhaloBHMdot": "bhmdot",
    "SubhaloFlag": "subhaloflag",
    "SubhaloGasMetallicity": "gasmetallicity",
    "SubhaloGrNr": "grnr",
    "SubhaloHalfmassRad": "halfmassrad",
    "SubhaloLen": "len",
    "SubhaloMass": "mass",
    "SubhaloMassInHalfRad": "massinhalfrad",
    "SubhaloMassInMaxRad": "massinmaxrad",
    "SubhaloMassInRad": "massinrad",
    "SubhaloParent": "parent",
    "SubhaloSFR": "sfr",
    "SubhaloSFRinHalfRad": "sfrinhalfrad",
    "SubhaloSFRinMaxRad": "sfrinmaxrad",
    "SubhaloSFRinRad": "sfrinrad",
    "SubhaloStarMetallicity": "starmetallicity",
    "SubhaloVelDisp": "veldisp",
    "SubhaloVmax": "vmax",
    "SubhaloVmaxRad": "vmaxrad",
    "SubhaloWindMass": "windmass",
}
_VECTORS = {"SubhaloCM": "cm", "SubhaloPos": "pos", "SubhaloSpin": "spin", "SubhaloVel": "vel"}
_PER_TYPE = {
    "SubhaloHalfmassRadType": "halfmassrad",
    "SubhaloLenType": "len",
    "SubhaloMassInHalfRadType": "massinhalfrad",
    "SubhaloMassInMaxRadType": "massinmaxrad",
    "SubhaloMassInRadType": "massinrad",
    "SubhaloMassType": "mass",
}

#: API field name -> (group-catalog dataset, column or None) for the subhalo detail endpoint.
#: ``id``, ``snap``, ``primary_flag`` (GroupFirstSub of its group is this subhalo) and
#: ``mass_log_msun`` (log10 of SubhaloMass in Msun) are derived and not listed.
SUBHALO_API_FIELDS: Mapping[str, tuple[str, int | None]] = MappingProxyType(
    {api: (field, None) for field, api in _SCALARS.items()}
    | {
        f"{api}_{axis}": (field, i)
        for field, api in _VECTORS.items()
        for i, axis in enumerate(_AXES)
    }
    | {
        f"{api}_{suffix}": (field, ptype)
        for field, api in _PER_TYPE.items()
        for ptype, suffix in _TYPE_SUFFIXES.items()
    }
)

#: Retry-After values beyond this are clipped: a worker should not sleep for hours.
_MAX_RETRY_AFTER_S = 600
#: Transient statuses: rate limiting and server errors.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_USER_AGENT = f"darkstack/{__version__} (+https://github.com/darkstack/darkstack)"


class TNGAPIError(DarkstackError, RuntimeError):
    """The TNG web API could not deliver what was asked."""


class TNGAuthError(TNGAPIError):
    """The API rejected the API key (HTTP 401 or 403)."""


class TNGNotFoundError(TNGAPIError):
    """The requested simulation, snapshot or object does not exist (HTTP 404)."""


class MissingAPIKeyError(InputError, TNGAPIError):
    """No API key is configured."""


def resolve_api_key(*, key_file: Path | None, env_var: str = API_KEY_ENV_VAR) -> str:
    """Find the TNG API key: the key file's first non-empty line, else the environment.

    Parameters
    ----------
    key_file : Path or None
        File holding the key; it wins over the environment when it exists and is not empty.
    env_var : str
        Environment variable holding the key.

    Returns
    -------
    str
        The key, stripped of surrounding white space.

    Raises
    ------
    MissingAPIKeyError
        Neither place holds a key; the message names both (never a key).
    """
    file_problem = "no key file was given"
    if key_file is not None:
        try:
            lines = key_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            file_problem = f"the key file {key_file} does not exist"
        except (OSError, UnicodeDecodeError) as error:
            file_problem = f"the key file {key_file} cannot be read ({type(error).__name__})"
        else:
            key = next((line.strip() for line in lines if line.strip()), "")
            if key:
                return key
            file_problem = f"the key file {key_file} is empty"
    key = os.environ.get(env_var, "").strip()
    if key:
        return key
    raise MissingAPIKeyError(
        f"no TNG API key: the environment variable {env_var} is not set and {file_problem}; "
        f"set {env_var} or write the key on the first line of the key file "
        f"(get a key at {_REGISTER_URL})"
    )


class TNGWebAPI:
    """Client of the TNG web API with an on-disk cache, retries and clear errors.

    Every response is stored in ``cache_dir`` under a name derived from a hash of the URL path
    and query (never the key), written atomically and checked (JSON parses, HDF5 opens with
    h5py) before use, so a truncated download is fetched again rather than returned.

    Parameters
    ----------
    simulation : str
        Simulation name as the API spells it, e.g. ``"TNG100-1"``.
    base_url : str
        Root of the API.
    api_key : str or None
        The key; None reads it from the ``TNG_API_KEY`` environment variable (use
        :func:`resolve_api_key` for a key file).
    cache_dir : Path
        Folder of cached responses; created if missing and safe to share between processes.
    max_retries : int
        Retries after the first attempt on connection errors, time-outs, HTTP 429 and 5xx
        (urllib3's :class:`~urllib3.util.Retry`), and on corrupt downloads.
    backoff_s : float
        Retry delay scale: a failed request is retried at once, then after ``backoff_s`` x
        2^(n-1) s (with jitter) unless the server sends ``Retry-After``.
    timeout_s : float
        Time-out of each connection and read, in seconds.
    """

    def __init__(
        self,
        *,
        simulation: str = "TNG100-1",
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None,
        cache_dir: Path,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 60.0,
    ) -> None:
        if not simulation or "/" in simulation:
            raise ValueError(f"simulation must be a name such as 'TNG100-1', not {simulation!r}")
        if max_retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ValueError("need max_retries >= 0, backoff_s >= 0 and timeout_s > 0")
        key = resolve_api_key(key_file=None) if api_key is None else api_key.strip()
        if not key:
            raise ValueError("api_key is empty")
        self.simulation = simulation
        self.base_url = base_url if base_url.endswith("/") else f"{base_url}/"
        self.cache_dir = Path(cache_dir)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._api_key = key
        self._pool: urllib3.PoolManager | None = None
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(simulation={self.simulation!r}, base_url={self.base_url!r}, "
            f"api_key='***', cache_dir={str(self.cache_dir)!r})"
        )

    # -- endpoints -------------------------------------------------------------------------

    def simulation_info(self) -> dict[str, Any]:
        """Metadata of the simulation (box size, cosmology, particle masses, ...).

        Returns
        -------
        dict
            The API's JSON, e.g. ``boxsize``, ``hubble``, ``omega_0``, ``mass_dm``.
        """
        return self._json(f"{self.base_url}{self.simulation}/")

    def subhalo(self, snap: int, subhalo_id: int) -> dict[str, Any]:
        """Catalog fields of one subhalo.

        Parameters
        ----------
        snap : int
            Snapshot number.
        subhalo_id : int
            Subfind index of the subhalo at that snapshot.

        Returns
        -------
        dict
            The API's JSON: fields named as in :data:`SUBHALO_API_FIELDS`, in code units, plus
            ``id``, ``primary_flag``, ``mass_log_msun`` and links (``cutouts``, ``related``).
        """
        return self._json(f"{self._snapshot_url(snap)}subhalos/{int(subhalo_id)}/")

    def search_subhalos(self, snap: int, **filters: float | str) -> Iterator[dict[str, Any]]:
        """Subhalos matching field filters, following the pages of the result.

        Parameters
        ----------
        snap : int
            Snapshot number.
        **filters : float or str
            API search parameters, e.g. ``mass_stars__gt=1.0`` (code units),
            ``primary_flag=1``, and ``limit`` for the page size.

        Yields
        ------
        dict
            One search result per subhalo (``id``, ``url`` and a few fields).
        """
        url = f"{self._snapshot_url(snap)}subhalos/"
        params = {name: str(value) for name, value in filters.items()}
        while True:
            page = self._json(url, params)
            yield from page["results"]
            if not page.get("next"):
                return
            # The next link already carries the filters and the new offset.
            url, params = self._on_base_origin(page["next"]), {}

    def subhalo_cutout(
        self, snap: int, subhalo_id: int, *, fields: Mapping[str, Sequence[str]]
    ) -> Path:
        """Particles of one subhalo, as a cached HDF5 file.

        Parameters
        ----------
        snap : int
            Snapshot number.
        subhalo_id : int
            Subfind index of the subhalo.
        fields : mapping of str to sequence of str
            Snapshot fields per particle type (``gas``, ``dm``, ``tracers``, ``stars``,
            ``bhs``), e.g. ``{"gas": ["Coordinates", "Masses"], "stars": ["all"]}``.

        Returns
        -------
        Path
            The cached cutout: ``Header`` plus a ``PartTypeN`` group per requested type.
        """
        url = f"{self._snapshot_url(snap)}subhalos/{int(subhalo_id)}/cutout.hdf5"
        return self._cached(url, _cutout_query(fields), suffix=".hdf5", is_valid=_is_hdf5)

    def halo_cutout(self, snap: int, halo_id: int, *, fields: Mapping[str, Sequence[str]]) -> Path:
        """Particles of one FoF group (all its subhalos and inner fuzz), as a cached HDF5 file.

        Parameters
        ----------
        snap : int
            Snapshot number.
        halo_id : int
            Index of the FoF group.
        fields : mapping of str to sequence of str
            Snapshot fields per particle type, as for :meth:`subhalo_cutout`.

        Returns
        -------
        Path
            The cached cutout.
        """
        url = f"{self._snapshot_url(snap)}halos/{int(halo_id)}/cutout.hdf5"
        return self._cached(url, _cutout_query(fields), suffix=".hdf5", is_valid=_is_hdf5)

    def groupcat_subset(
        self,
        snap: int,
        *,
        subhalo_fields: Sequence[str] = (),
        group_fields: Sequence[str] = (),
    ) -> Path:
        """Whole-catalog columns of the group catalog, as a cached HDF5 file.

        Parameters
        ----------
        snap : int
            Snapshot number.
        subhalo_fields, group_fields : sequence of str
            Catalog datasets, e.g. ``["SubhaloMassType", "SubhaloSFR"]``.

        Returns
        -------
        Path
            The cached file (assumed layout: ``Subhalo/<field>`` and ``Group/<field>``).
        """
        query = {
            name: ",".join(sorted(set(columns)))
            for name, columns in (("Subhalo", subhalo_fields), ("Group", group_fields))
            if columns
        }
        if not query:
            raise ValueError("name at least one subhalo or group field")
        url = f"{self.base_url}{self.simulation}/files/groupcat-{int(snap)}/"
        return self._cached(url, query, suffix=".hdf5", is_valid=_is_hdf5)

    # -- cache -----------------------------------------------------------------------------

    def _json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        path = self._cached(url, params, suffix=".json", is_valid=_is_json)
        return json.loads(path.read_bytes())

    def _cached(
        self,
        url: str,
        params: Mapping[str, str] | None,
        *,
        suffix: str,
        is_valid: Callable[[Path], bool],
    ) -> Path:
        """The cached response to ``url``, downloaded (again) unless a valid copy exists."""
        target = self._cache_path(url, params, suffix=suffix)
        if target.exists():
            if is_valid(target):
                return target
            logger.warning("cached %s is corrupt; downloading it again", target.name)
            target.unlink(missing_ok=True)
        for attempt in range(self.max_retries + 1):
            if self._store(target, self._get(url, params), is_valid=is_valid):
                return target
            if attempt < self.max_retries:
                delay = self._backoff(attempt)
                logger.warning(
                    "GET %s returned a corrupt or truncated body; retrying in %.2f s",
                    self._describe(url),
                    delay,
                )
                time.sleep(delay)
        raise TNGAPIError(
            f"GET {self._describe(url)} returned a corrupt or truncated body "
            f"{self.max_retries + 1} times"
        )

    def _cache_path(self, url: str, params: Mapping[str, str] | None, *, suffix: str) -> Path:
        parts = urlsplit(_with_query(url, params))
        digest = hashlib.sha256(f"{parts.path}?{parts.query}".encode()).hexdigest()[:32]
        # A readable prefix for people browsing the cache; the hash alone decides identity.
        readable = re.sub(r"[^A-Za-z0-9.-]+", "_", parts.path.strip("/"))[-80:]
        return self.cache_dir / f"{readable}-{digest}{suffix}"

    @staticmethod
    def _store(target: Path, payload: bytes, *, is_valid: Callable[[Path], bool]) -> bool:
        """Write ``payload`` to ``target`` atomically if it is valid; report whether it was."""
        descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
        temporary = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(payload)
            if not is_valid(temporary):
                return False
            os.replace(temporary, target)
            return True
        finally:
            temporary.unlink(missing_ok=True)

    # -- network ---------------------------------------------------------------------------

    def _get(self, url: str, params: Mapping[str, str] | None) -> bytes:
        """GET ``url`` with the key header; urllib3's :class:`Retry` retries transient failures.

        Connection errors, time-outs, HTTP 429 and 5xx are retried up to ``max_retries`` times:
        the first at once, then after ``backoff_s`` x 2^(n-1) s plus up to ``backoff_s / 2`` of
        jitter, or after the server's ``Retry-After`` (at most 10 minutes).

        Parameters
        ----------
        url : str
            Absolute URL, possibly with a query.
        params : mapping of str to str or None
            Further query parameters.

        Returns
        -------
        bytes
            The response body.
        """
        what = self._describe(url)
        try:
            response = self._http().request(
                "GET",
                _with_query(url, params),
                headers={"api-key": self._api_key, "User-Agent": _USER_AGENT},
                retries=self._retry,
                timeout=urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s),
            )
        except urllib3.exceptions.MaxRetryError as error:
            raise TNGAPIError(
                f"GET {what} failed ({self.max_retries + 1} attempts); last: "
                f"{type(error.reason).__name__}: {error.reason}"
            ) from None
        except urllib3.exceptions.HTTPError as error:
            raise TNGAPIError(f"GET {what} failed: {type(error).__name__}: {error}") from None
        status = response.status
        if status < 300:
            return response.data
        if status in (401, 403):
            raise TNGAuthError(
                f"the TNG API rejected the API key (HTTP {status}); check "
                f"{API_KEY_ENV_VAR} or the key file"
            )
        if status == 404:
            raise TNGNotFoundError(f"the TNG API has no {what} (HTTP 404)")
        if status in _RETRY_STATUSES:  # the retries are spent: urllib3 hands back the last
            attempts = 1 + (len(response.retries.history) if response.retries else 0)
            raise TNGAPIError(f"GET {what} failed ({attempts} attempts); last: HTTP {status}")
        raise TNGAPIError(
            f"the TNG API refused GET {what} (HTTP {status}): {_excerpt(response.data)}"
        )

    @cached_property
    def _retry(self) -> Retry:
        return Retry(
            total=self.max_retries,
            status_forcelist=_RETRY_STATUSES,
            backoff_factor=self.backoff_s,
            # Jitter keeps parallel workers that failed together from retrying together.
            backoff_jitter=self.backoff_s / 2.0,
            respect_retry_after_header=True,
            retry_after_max=_MAX_RETRY_AFTER_S,
            # The statuses are judged in _get, which needs the last response.
            raise_on_status=False,
            # The key must never follow a redirect to another host.
            remove_headers_on_redirect=Retry.DEFAULT_REMOVE_HEADERS_ON_REDIRECT | {"api-key"},
        )

    def _http(self) -> urllib3.PoolManager:
        """One connection pool per client and process (it is not pickled with the client)."""
        if self._pool is None:
            self._pool = urllib3.PoolManager()
        return self._pool

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pool"] = None
        return state

    def _backoff(self, attempt: int) -> float:
        # Jitter keeps parallel workers that failed together from retrying together.
        return self.backoff_s * 2**attempt * random.uniform(1.0, 1.5)

    def _snapshot_url(self, snap: int) -> str:
        return f"{self.base_url}{self.simulation}/snapshots/{int(snap)}/"

    def _on_base_origin(self, url: str) -> str:
        """``url`` moved to the base URL's scheme and host.

        Pagination links are built by the server from its own view of the request and may come
        back as plain http; the key must only ever travel to the configured origin.
        """
        base, link = urlsplit(self.base_url), urlsplit(url)
        return urlunsplit((base.scheme, base.netloc, link.path, link.query, ""))

    def _describe(self, url: str) -> str:
        """The object a URL names, e.g. ``TNG100-1/snapshots/99/subhalos/7``."""
        path = urlsplit(url).path
        base_path = urlsplit(self.base_url).path
        return (path[len(base_path) :] if path.startswith(base_path) else path).strip("/")


def _cutout_query(fields: Mapping[str, Sequence[str]]) -> dict[str, str]:
    if not fields:
        raise ValueError("name at least one particle type, e.g. {'dm': ['Coordinates']}")
    query = {}
    for ptype, names in fields.items():
        if ptype not in CUTOUT_PARTICLE_TYPES:
            raise ValueError(
                f"unknown particle type {ptype!r}; the API knows {sorted(CUTOUT_PARTICLE_TYPES)}"
            )
        # A bare string is a Sequence[str] too; "all" must not become "a,l,l".
        chosen = [names] if isinstance(names, str) else list(names)
        if not chosen:
            raise ValueError(f"no fields named for particle type {ptype!r}")
        query[ptype] = ",".join(sorted(set(chosen)))
    return query


def _with_query(url: str, params: Mapping[str, str] | None) -> str:
    """``url`` with ``params`` added and the whole query sorted, so equal requests match."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list((params or {}).items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(sorted(query)), ""))


def _excerpt(body: bytes) -> str:
    text = body[:300].decode("utf-8", "replace")
    return " ".join(text.split()) or "no details"


def _is_json(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except ValueError:
        return False
    return True


def _is_hdf5(path: Path) -> bool:
    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False
