"""The command line's one error style: one line, one prefix, the exit code of its kind."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from darkstack.cli.errors import DarkstackGroup
from darkstack.errors import DarkstackError, InputError


@click.group(cls=DarkstackGroup)
@click.option("--debug", is_flag=True)
@click.pass_context
def toy(ctx: click.Context, debug: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@toy.command()
@click.argument("kind")
@click.option("--count", type=int, default=1)
def fail(kind: str, count: int) -> None:
    if kind == "input":
        raise InputError("--store /nowhere does not exist; expected a store folder")
    if kind == "failure":
        raise DarkstackError("3 of 5 galaxies failed: 3 disk full", exit_code=1)
    if kind == "unexpected":
        raise ZeroDivisionError("division by zero")
    if kind == "multiline":
        raise InputError("config.yaml is not valid YAML:\n  while scanning\n  line 3")
    if kind == "click":
        raise click.ClickException("a click error")
    if kind == "interrupt":
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("arguments", "exit_code", "line"),
    [
        (["fail", "ok"], 0, None),
        (["fail", "input"], 2, "--store /nowhere does not exist; expected a store folder"),
        (["fail", "failure"], 1, "3 of 5 galaxies failed: 3 disk full"),
        (
            ["fail", "unexpected"],
            1,
            "ZeroDivisionError: division by zero (--debug shows the traceback)",
        ),
        (["fail", "multiline"], 2, "config.yaml is not valid YAML: while scanning line 3"),
        (["fail", "click"], 1, "a click error"),
        (["fail", "input", "--count", "x"], 2, None),
        (["nope"], 2, "No such command 'nope'. (see: toy --help)"),
    ],
)
def test_every_error_is_one_prefixed_line_with_its_exit_code(
    arguments: list[str], exit_code: int, line: str | None
) -> None:
    result = CliRunner().invoke(toy, arguments)
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    if exit_code == 0:
        assert result.stderr == ""
        return
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("darkstack: error: ")
    assert "Usage:" not in result.stderr  # click would print a usage block and "Error: ..."
    if line is not None:
        assert lines[0] == f"darkstack: error: {line}"
    else:
        assert "'x' is not a valid integer" in lines[0] and "toy fail --help" in lines[0]


def test_interrupted_exits_130_and_debug_shows_the_traceback() -> None:
    interrupted = CliRunner().invoke(toy, ["fail", "interrupt"])
    assert interrupted.exit_code == 130
    assert interrupted.stderr.strip() == "darkstack: interrupted"
    debug = CliRunner().invoke(toy, ["--debug", "fail", "unexpected"])
    assert isinstance(debug.exception, ZeroDivisionError)
    assert debug.exit_code == 1
