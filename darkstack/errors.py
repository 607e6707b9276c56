"""The errors darkstack reports to its user, and the exit code each one gives.

Any stage raises :class:`DarkstackError` (or a subclass) for a failure its user can act on; the
command line (:mod:`darkstack.cli.errors`) prints its message as one line,
``darkstack: error: MESSAGE``, and exits with its :attr:`~DarkstackError.exit_code`:

====  ===========================================================================
code  meaning
====  ===========================================================================
0     success
1     failure while working (:class:`DarkstackError`; an environmental failure
      that a rerun may fix, or nothing succeeded)
2     usage or bad input (:class:`InputError`: a wrong path, setting, file or
      value; nothing was done)
130   interrupted (Ctrl-C); rerunning resumes
====  ===========================================================================

The message must name the culprit (file, key, value) and say what was expected, in one line: it
is all the user sees unless they rerun with ``--debug``. A build ends with a non-zero code by
raising ``DarkstackError(summary, exit_code=1)`` after its work is recorded.
"""

from __future__ import annotations

#: Exit code of a failure while working.
EXIT_FAILURE = 1
#: Exit code of a usage error or bad input, found before any work starts.
EXIT_BAD_INPUT = 2
#: Exit code of an interrupted command (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def one_line(text: str) -> str:
    """``text`` with its lines joined: a message that runs to several lines (YAML's, HDF5's,
    DuckDB's) stays one line of the terminal."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class DarkstackError(Exception):
    """A failure reported to the user as one line and an exit code.

    Parameters
    ----------
    message : str
        One line naming what failed (file, key or value) and what was expected.
    exit_code : int, optional
        The command's exit code; the class's default (1) when not given.
    """

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(DarkstackError):
    """Bad input found before any work started: a path, file, setting or value (exit code 2)."""

    exit_code = EXIT_BAD_INPUT
