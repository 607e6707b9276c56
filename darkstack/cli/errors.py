"""How the command line reports errors: one line, one prefix, one exit code per kind.

Every error, whether click's own (a usage error) or a stage's, is printed to standard error as
one line ``darkstack: error: MESSAGE`` and ends the command with the exit code of
:mod:`darkstack.errors` (0 ok, 1 failure, 2 usage or bad input, 130 interrupted). ``--debug``
lets a stage's exception through with its traceback instead. :class:`DarkstackGroup` is the
root group's class that does this; nothing else in the command line prints errors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from darkstack.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, DarkstackError, one_line

PREFIX = "darkstack: error: "


def exit_code_of(error: BaseException) -> int:
    """The exit code of ``error``: its own, 2 for a missing file (a path the user gave, or a
    stage they have not run yet), else 1."""
    if isinstance(error, DarkstackError):
        return error.exit_code
    return EXIT_BAD_INPUT if isinstance(error, FileNotFoundError) else 1


def message_of(error: BaseException) -> str:
    """What the user reads of ``error``: its message, with the type of an unexpected one."""
    text = one_line(str(error))
    if isinstance(error, DarkstackError | FileNotFoundError):
        # Their messages name the file, key or value: the type would add nothing.
        return text or type(error).__name__
    # Not one of darkstack's own errors: the type says what went wrong where the message
    # alone ("division by zero") may not, and the traceback is one flag away.
    return f"{type(error).__name__}: {text} (--debug shows the traceback)"


def exit_with(message: str, *, exit_code: int) -> NoReturn:
    """Print ``message`` as the one error line and exit with ``exit_code``."""
    click.echo(PREFIX + one_line(message), err=True)
    sys.exit(exit_code)


class DarkstackGroup(click.Group):
    """The root group: every error ends as one line and the exit code of its kind."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            exit_with(message_of(error), exit_code=exit_code_of(error))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            # Click prints its errors itself in standalone mode ("Error: ..." under a usage
            # block, "Aborted!"); without it they reach here and are printed our way.
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "darkstack"
            exit_with(f"{error.format_message()} (see: {command} --help)", exit_code=EXIT_BAD_INPUT)
        except click.ClickException as error:
            exit_with(error.format_message(), exit_code=error.exit_code)
        except click.Abort as abort:
            # Click turns Ctrl-C (and end of input at a prompt) into Abort.
            if isinstance(abort.__cause__, KeyboardInterrupt):
                click.echo("darkstack: interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            exit_with("aborted", exit_code=1)
        sys.exit(result if isinstance(result, int) else 0)
