"""A fake IllustrisTNG web API that serves a mock universe from disk, for tests.

It reads the universe with illustris_python, as a user with a local TNG mirror would, and
answers the endpoints :mod:`darkstack.ingest.tng_api` uses with the real API's URL layout,
``api-key`` header check, pagination and HDF5 cutouts. It can fail its first requests (HTTP 503
or 429) and truncate its first HDF5 responses, and it records every request, so tests can check
retries, corrupt-download handling and the cache. Where the real API's behaviour is uncertain,
the choices are those documented in :mod:`darkstack.ingest.tng_api`.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import h5py
import illustris_python as il
import numpy as np

from darkstack.ingest.tng_api import CUTOUT_PARTICLE_TYPES, SUBHALO_API_FIELDS

_SEARCH_OPERATORS: Mapping[str, Callable[[Any, float], Any]] = {
    "": np.equal,
    "gt": np.greater,
    "gte": np.greater_equal,
    "lt": np.less,
    "lte": np.less_equal,
}
_HDF5 = "application/x-hdf5"


class _HTTPError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def _json_response(payload: Any, *, status: int = 200) -> _Response:
    return _Response(status, json.dumps(payload).encode())


@dataclass
class FakeTNGAPI:
    """A fake TNG API over a mock universe; :func:`serve_fake_tng_api` runs it.

    Parameters
    ----------
    sim_root : Path
        The simulation root; illustris_python's basePath is ``sim_root / "output"``.
    api_key : str
        The only key accepted (401 without a key, 403 with another).
    simulation : str
        Simulation name in the URLs.
    snap : int
        The one snapshot served.
    page_size : int
        Default ``limit`` of search pages.
    fail_first : int
        The first this many requests fail with ``fail_status``.
    fail_status : int
        Status of those failures (503 or 429, say).
    retry_after : str or None
        ``Retry-After`` header sent with those failures.
    truncate_first : int
        The first this many HDF5 responses are cut in half (with a matching Content-Length,
        as a broken upstream would send them).
    link_base_url : str or None
        API root written into returned links (next pages, URLs); None uses ``base_url``.
        Another origin mimics a server behind a proxy that builds links from its own view.
    """

    sim_root: Path
    api_key: str
    simulation: str = "TNG100-1"
    snap: int = 99
    page_size: int = 100
    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    truncate_first: int = 0
    link_base_url: str | None = None
    base_url: str = ""
    _requests: list[str] = field(default_factory=list)
    _truncated: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._base_path = str(self.sim_root / "output")
        catalog = il.groupcat.loadSubhalos(self._base_path, self.snap)
        self._n_subhalos = int(catalog.pop("count"))
        self._n_groups = int(il.groupcat.loadHeader(self._base_path, self.snap)["Ngroups_Total"])
        self._first_sub = il.groupcat.loadHalos(
            self._base_path, self.snap, fields=["GroupFirstSub"]
        )
        with h5py.File(il.snapshot.snapPath(self._base_path, self.snap), "r") as file:
            self._snapshot_header = dict(file["Header"].attrs)
        # Search needs every subhalo's API fields at once; details use loadSingle per request.
        self._search_columns = self._api_fields(catalog, ids=np.arange(self._n_subhalos))
        prefix = rf"^/api/{re.escape(self.simulation)}/"
        snapshot = rf"{prefix}snapshots/{self.snap}/"
        self._routes: tuple[tuple[re.Pattern[str], Callable[..., _Response]], ...] = (
            (re.compile(rf"{prefix}$"), self._simulation_info),
            (re.compile(rf"{snapshot}subhalos/$"), self._search),
            (re.compile(rf"{snapshot}subhalos/(?P<object_id>\d+)/$"), self._subhalo),
            (
                re.compile(rf"{snapshot}subhalos/(?P<object_id>\d+)/cutout\.hdf5$"),
                self._subhalo_cutout,
            ),
            (re.compile(rf"{snapshot}halos/(?P<object_id>\d+)/cutout\.hdf5$"), self._halo_cutout),
            (re.compile(rf"{prefix}files/groupcat-{self.snap}/$"), self._groupcat),
        )

    @property
    def _links(self) -> str:
        return self.link_base_url or self.base_url

    @property
    def requests(self) -> list[str]:
        """Path and query of every request received, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """Number of requests received."""
        with self._lock:
            return len(self._requests)

    def respond(self, target: str, headers: Message) -> _Response:
        """Answer one GET of ``target`` (path and query) sent with ``headers``."""
        with self._lock:
            self._requests.append(target)
            failing = len(self._requests) <= self.fail_first
        if failing:
            extra = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            body = json.dumps({"detail": "injected failure"}).encode()
            return _Response(self.fail_status, body, headers=extra)
        key = headers.get("api-key")
        if key is None:
            return _json_response({"detail": "Authentication required."}, status=401)
        if key != self.api_key:
            return _json_response({"detail": "Invalid API key."}, status=403)
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        for pattern, handler in self._routes:
            match = pattern.match(parts.path)
            if match:
                try:
                    response = handler(query, **match.groupdict())
                except _HTTPError as error:
                    return _json_response({"detail": error.detail}, status=error.status)
                return self._maybe_truncated(response)
        return _json_response({"detail": "Not found."}, status=404)

    # -- endpoints -------------------------------------------------------------------------

    def _simulation_info(self, query: Mapping[str, str]) -> _Response:
        header = self._snapshot_header
        return _json_response(
            {
                "name": self.simulation,
                "boxsize": float(header["BoxSize"]),
                "hubble": float(header["HubbleParam"]),
                "omega_0": float(header["Omega0"]),
                "omega_L": float(header["OmegaLambda"]),
                "omega_B": float(header["OmegaBaryon"]),
                "mass_dm": float(header["MassTable"][1]),
                "num_files_snapshot": int(header["NumFilesPerSnapshot"]),
                "snapshots": f"{self._links}{self.simulation}/snapshots/",
            }
        )

    def _subhalo(self, query: Mapping[str, str], *, object_id: str) -> _Response:
        subhalo_id = self._check_id(object_id, self._n_subhalos, "subhalo")
        row = il.groupcat.loadSingle(self._base_path, self.snap, subhaloID=subhalo_id)
        fields = self._api_fields(row, ids=np.asarray(subhalo_id))
        detail = {name: _plain(value) for name, value in fields.items()}
        snapshot_url = f"{self._links}{self.simulation}/snapshots/{self.snap}/"
        halo_url = f"{snapshot_url}halos/{detail['grnr']}/"
        detail |= {
            "snap": self.snap,
            "id": subhalo_id,
            "related": {"parent_halo": halo_url},
            "cutouts": {
                "subhalo": f"{snapshot_url}subhalos/{subhalo_id}/cutout.hdf5",
                "parent_halo": f"{halo_url}cutout.hdf5",
            },
            "meta": {"url": f"{snapshot_url}subhalos/{subhalo_id}/", "snapshot": snapshot_url},
        }
        return _json_response(detail)

    def _search(self, query: Mapping[str, str]) -> _Response:
        filters = {name: value for name, value in query.items() if name not in ("limit", "offset")}
        selected = np.ones(self._n_subhalos, dtype=bool)
        try:
            limit = int(query.get("limit", self.page_size))
            offset = int(query.get("offset", 0))
            for name, value in filters.items():
                field_name, _, operator = name.partition("__")
                compare = _SEARCH_OPERATORS[operator]
                selected &= compare(self._search_columns[field_name], float(value))
        except (KeyError, ValueError) as error:
            raise _HTTPError(400, f"bad search parameter: {error}") from error
        ids = np.flatnonzero(selected)
        page = ids[offset : offset + limit]
        search_url = f"{self._links}{self.simulation}/snapshots/{self.snap}/subhalos/"

        def link(start: int) -> str:
            return f"{search_url}?{urlencode({**filters, 'limit': limit, 'offset': start})}"

        results = [
            {
                "id": int(i),
                "url": f"{search_url}{i}/",
                "sfr": _plain(self._search_columns["sfr"][i]),
                "mass_log_msun": _plain(self._search_columns["mass_log_msun"][i]),
            }
            for i in page
        ]
        return _json_response(
            {
                "count": int(ids.size),
                "next": link(offset + limit) if offset + limit < ids.size else None,
                "previous": link(max(offset - limit, 0)) if offset > 0 else None,
                "results": results,
            }
        )

    def _subhalo_cutout(self, query: Mapping[str, str], *, object_id: str) -> _Response:
        subhalo_id = self._check_id(object_id, self._n_subhalos, "subhalo")
        return self._cutout(query, il.snapshot.loadSubhalo, subhalo_id)

    def _halo_cutout(self, query: Mapping[str, str], *, object_id: str) -> _Response:
        return self._cutout(
            query, il.snapshot.loadHalo, self._check_id(object_id, self._n_groups, "halo")
        )

    def _groupcat(self, query: Mapping[str, str]) -> _Response:
        loaders = {"Subhalo": il.groupcat.loadSubhalos, "Group": il.groupcat.loadHalos}
        unknown = set(query) - set(loaders)
        if unknown or not query:
            raise _HTTPError(
                400, f"expected Subhalo= and/or Group= field lists, got {sorted(query)}"
            )
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as file:
            header = file.create_group("Header")
            for name, value in il.groupcat.loadHeader(self._base_path, self.snap).items():
                header.attrs[name] = value
            for group_name, names in query.items():
                group = file.create_group(group_name)
                for name in names.split(","):
                    try:
                        group[name] = loaders[group_name](self._base_path, self.snap, fields=[name])
                    except Exception as error:  # illustris_python raises bare Exception
                        raise _HTTPError(400, str(error)) from error
        return _Response(200, buffer.getvalue(), _HDF5, _attachment(f"groupcat_{self.snap}.hdf5"))

    # -- helpers ---------------------------------------------------------------------------

    def _api_fields(self, columns: Mapping[str, Any], *, ids: np.ndarray) -> dict[str, Any]:
        """API fields of one catalog row (scalars) or of the whole catalog (arrays)."""
        fields = {
            api: np.asarray(columns[name])[..., column] if column is not None else columns[name]
            for api, (name, column) in SUBHALO_API_FIELDS.items()
            if name in columns
        }
        group_first_sub = self._first_sub[np.asarray(columns["SubhaloGrNr"])]
        fields["primary_flag"] = (group_first_sub == ids).astype(np.int64)
        hubble = float(self._snapshot_header["HubbleParam"])
        with np.errstate(divide="ignore"):
            fields["mass_log_msun"] = np.log10(np.asarray(columns["SubhaloMass"]) * 1e10 / hubble)
        return fields

    def _cutout(
        self, query: Mapping[str, str], loader: Callable[..., Any], object_id: int
    ) -> _Response:
        """An HDF5 cutout of the particles ``loader`` reads for ``object_id``."""
        unknown = set(query) - set(CUTOUT_PARTICLE_TYPES)
        if unknown:
            raise _HTTPError(400, f"unknown particle types {sorted(unknown)}")
        # Without a query the real API returns every type and field.
        requested = query or dict.fromkeys(CUTOUT_PARTICLE_TYPES, "all")
        counts = np.zeros(6, dtype=np.int64)
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as file:
            for ptype_name, names in requested.items():
                ptype = CUTOUT_PARTICLE_TYPES[ptype_name]
                fields = None if names == "all" else names.split(",")
                try:
                    particles = loader(self._base_path, self.snap, object_id, ptype, fields=fields)
                except Exception as error:  # illustris_python raises bare Exception
                    raise _HTTPError(400, str(error)) from error
                if fields is not None and len(fields) == 1 and isinstance(particles, np.ndarray):
                    # illustris_python returns a bare array for a single field.
                    particles = {"count": len(particles), fields[0]: particles}
                counts[ptype] = particles.pop("count")
                if counts[ptype]:
                    group = file.create_group(f"PartType{ptype}")
                    for name, values in particles.items():
                        group[name] = values
            header = file.create_group("Header")
            for name, value in self._snapshot_header.items():
                header.attrs[name] = value
            header.attrs["NumPart_ThisFile"] = counts.astype(np.int32)
            header.attrs["NumPart_Total"] = counts.astype(np.uint32)
            header.attrs["NumFilesPerSnapshot"] = np.int32(1)
        return _Response(200, buffer.getvalue(), _HDF5, _attachment(f"cutout_{object_id}.hdf5"))

    def _maybe_truncated(self, response: _Response) -> _Response:
        with self._lock:
            truncate = response.content_type == _HDF5 and self._truncated < self.truncate_first
            self._truncated += truncate
        if not truncate:
            return response
        return _Response(
            response.status, response.body[: len(response.body) // 2], response.content_type
        )

    @staticmethod
    def _check_id(text: str, count: int, kind: str) -> int:
        value = int(text)
        if value >= count:
            raise _HTTPError(404, f"no {kind} {value} (there are {count})")
        return value


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar (NaN and infinities as None, as JSON has neither)."""
    scalar = np.asarray(value).item()
    if isinstance(scalar, float) and not np.isfinite(scalar):
        return None
    return scalar


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename={filename}"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        response = self.server.api.respond(self.path, self.headers)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read :attr:`FakeTNGAPI.requests` instead of a log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: FakeTNGAPI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api


@contextmanager
def serve_fake_tng_api(sim_root: Path, *, api_key: str, **options: Any) -> Iterator[FakeTNGAPI]:
    """Serve a fake TNG API over ``sim_root`` on 127.0.0.1 (a free port) while in the block.

    Parameters
    ----------
    sim_root : Path
        The mock universe's root folder.
    api_key : str
        The key the fake accepts.
    **options : Any
        Further :class:`FakeTNGAPI` settings (``fail_first``, ``truncate_first``, ...).

    Yields
    ------
    FakeTNGAPI
        The running fake; its ``base_url`` is the API root to give the client.
    """
    api = FakeTNGAPI(sim_root=sim_root, api_key=api_key, **options)
    server = _Server(api)
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
