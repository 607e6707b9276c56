"""How a build verb ends: its report as the last line, and its exit code."""

from __future__ import annotations

import click

from darkstack.status import BuildIncompleteError, BuildReport


def finish_build(report: BuildReport) -> None:
    """Print the report's line; when the build is incomplete, raise it as the error instead.

    Incomplete means an environmental failure remains (the next run retries it) or nothing
    succeeded (:attr:`BuildReport.complete`): :class:`BuildIncompleteError`, which the command
    line prints as its one error line (exit code 1). The line is the last either way.
    """
    if not report.complete:
        raise BuildIncompleteError(report)
    click.echo(report.line())
