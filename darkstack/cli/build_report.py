"""How a build verb ends: its report as the last line, and its exit code.

The one place that turns a :class:`~darkstack.status.BuildReport` into the verb's outcome, so
that the CLI's error style can change here alone.
"""

from __future__ import annotations

import click

from darkstack.status import BuildReport


def finish_build(report: BuildReport) -> None:
    """Print the report's line; exit 1 when the build is incomplete.

    Incomplete means an environmental failure remains (the next run retries it) or nothing
    succeeded (:attr:`BuildReport.complete`). The line is then the error message, so it stays
    the last line either way.
    """
    if report.complete:
        click.echo(report.line())
        return
    click.echo(f"darkstack: error: {report.line()}", err=True)
    raise click.exceptions.Exit(1)
