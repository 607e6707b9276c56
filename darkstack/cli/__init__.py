"""The ``darkstack`` command line: one verb per stage, following ``shared/CONTRACT.md``.

Every error is one line, ``darkstack: error: ...``, and an exit code (0 ok, 1 failure, 2 usage
or bad input, 130 interrupted; :mod:`darkstack.cli.errors`); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import click

from darkstack import __version__
from darkstack.cli.cluster import cluster
from darkstack.cli.demo import demo
from darkstack.cli.errors import DarkstackGroup
from darkstack.cli.evaluate import evaluate
from darkstack.cli.fields import fields, spectra
from darkstack.cli.ingest import ingest
from darkstack.cli.jobs import jobs
from darkstack.cli.observe import observe
from darkstack.cli.query import query
from darkstack.cli.study import study
from darkstack.cli.submit import submit
from darkstack.cli.train import train
from darkstack.cli.universe import universe


@click.group(cls=DarkstackGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
cli.add_command(study)
cli.add_command(demo)
cli.add_command(submit)
cli.add_command(jobs)
cli.add_command(cluster)


def main() -> None:
    """Entry point of the ``darkstack`` console script."""
    cli(obj={})
