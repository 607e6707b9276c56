"""The ``darkstack`` command line: one verb per stage, following ``shared/CONTRACT.md``.

Errors a user can fix (bad paths, configs, inputs) are printed as one line naming what was
wrong; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from darkstack import __version__
from darkstack.cli.cluster import cluster
from darkstack.cli.demo import demo
from darkstack.cli.evaluate import evaluate
from darkstack.cli.fields import fields, spectra
from darkstack.cli.ingest import ingest
from darkstack.cli.jobs import jobs
from darkstack.cli.observe import observe
from darkstack.cli.predict import predict
from darkstack.cli.query import query
from darkstack.cli.study import study
from darkstack.cli.submit import submit
from darkstack.cli.train import train
from darkstack.cli.universe import universe


class _Group(click.Group):
    """Turns expected failures into one clear line unless --debug is given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            message = str(error) or type(error).__name__
            click.echo(f"darkstack: error: {message}", err=True)
            click.echo("(run with --debug for the traceback)", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="darkstack")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """darkstack: learn where the dark matter is, from what telescopes can see."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


cli.add_command(universe)
cli.add_command(ingest)
cli.add_command(observe)
cli.add_command(fields)
cli.add_command(spectra)
cli.add_command(query)
cli.add_command(train)
cli.add_command(evaluate)
cli.add_command(predict)
cli.add_command(study)
cli.add_command(demo)
cli.add_command(submit)
cli.add_command(jobs)
cli.add_command(cluster)


def main() -> None:
    """Entry point of the ``darkstack`` console script."""
    cli(obj={})
