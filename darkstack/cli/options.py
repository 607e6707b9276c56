"""Options shared by several verbs, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

override_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config value (dotted keys for nested ones); repeatable.",
)


def dask_options(function: F) -> F:
    """``--dask-address`` and ``--workers``: where a Dask build runs."""
    function = click.option(
        "--workers",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Local Dask worker processes to start; 0 runs in this process.",
    )(function)
    return click.option(
        "--dask-address",
        default=None,
        metavar="ADDR",
        help="Scheduler of a running Dask cluster (tcp://host:8786) instead of local work.",
    )(function)
