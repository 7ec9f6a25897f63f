"""The project's errors and the one command-line error boundary, ``run_cli``.

Every error the library raises on purpose is a :class:`DgtrsError`, and also the builtin a caller
would catch for it (``ValueError`` for bad input, ``RuntimeError`` for a run that cannot go on),
so ``except ValueError`` keeps working. Each kind carries the exit code a command line returns:

====  ==================  ===================================================================
code  kind                meaning
====  ==================  ===================================================================
0                         success
1     (internal error)    not a library error: a bug -- the traceback is printed, please report it
2     ``UsageError``      a bad argument, an unknown name (the valid ones are listed), a bad spec;
                          argparse's own usage errors exit with 2 as well
3     ``DataError``       an input data set or file is missing or not in its published format
                          (``dgtrs_lib.data.common.DataFormatError``)
4     ``ModelError``      a model source or checkpoint cannot be resolved or read
                          (``dgtrs_lib.model.checkpoint.CheckpointError``)
5     ``OfflineError``    the run needs a download and is offline (``DGTRS_ONLINE=1`` allows it)
6     ``ConflictError``   a result already exists (``--overwrite`` replaces it), or another run
                          holds the folder's lock (``LockedError`` names the holder)
7     ``RunError``        a step of a run failed (a notebook, the book build, a check)
8     (system)            the operating system refused: permission, disk full, out of memory
130   (interrupted)       Ctrl-C
====  ==================  ===================================================================

``run_cli(main, argv)`` is the boundary every entry point's ``main`` goes through: a library
error becomes ONE line on stderr, ``error: <where>: <what>; expected <what was expected>``, and
its exit code. ``--debug`` (anywhere on the command line) or ``DGTRS_DEBUG=1`` prints the
traceback as well. ``file_not_found`` words a missing path with the near misses in its folder.
Importing this module imports nothing outside the standard library.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import difflib
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

EXIT_OK, EXIT_INTERNAL, EXIT_SYSTEM, EXIT_INTERRUPTED = 0, 1, 8, 130
DEBUG_FLAG = "--debug"
DEBUG_ENV = "DGTRS_DEBUG"


class DgtrsError(Exception):
    """Base of every error the library raises on purpose; ``exit_code`` is the command line's."""

    exit_code = 1


class UsageError(DgtrsError, ValueError):
    """A bad argument, an unknown name or a malformed spec."""

    exit_code = 2


class DataError(DgtrsError, ValueError):
    """Input data that is missing or not in its published format."""

    exit_code = 3


class ModelError(DgtrsError, ValueError):
    """A model source or checkpoint that cannot be resolved or read."""

    exit_code = 4


class OfflineError(DgtrsError, RuntimeError):
    """A download was asked for while the run is offline."""

    exit_code = 5


class ConflictError(DgtrsError, RuntimeError):
    """The run would replace or race with another run's output."""

    exit_code = 6


class ResultExistsError(ConflictError):
    """A results file (or export folder) exists and replacing it was not asked for."""


class LockedError(ConflictError):
    """Another process holds the lock of a training or results folder."""


class RunError(DgtrsError, RuntimeError):
    """A step of a run failed (notebook, book build, check)."""

    exit_code = 7


EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug: the traceback is printed)",
    UsageError.exit_code: "usage: bad argument, unknown name or bad spec",
    DataError.exit_code: "data: missing input or not in its published format",
    ModelError.exit_code: "model: source or checkpoint cannot be resolved or read",
    OfflineError.exit_code: "offline: the run needs a download",
    ConflictError.exit_code: "conflict: result exists (--overwrite) or folder locked by another run",
    RunError.exit_code: "failed: a step of the run failed",
    EXIT_SYSTEM: "system: the operating system refused (permission, disk, memory)",
    EXIT_INTERRUPTED: "interrupted",
}


# ----------------------------------------------------------------------------- messages
def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def choices(valid: Sequence[str], given: str | None = None) -> str:
    """``"one of a, b, c"`` (+ ``"; did you mean x?"`` when ``given`` is close to one of them)."""
    valid = [str(v) for v in valid]
    text = "one of " + ", ".join(valid)
    close = difflib.get_close_matches(str(given), valid, n=2, cutoff=0.6) if given is not None else []
    return text + (f"; did you mean {' or '.join(close)}?" if close else "")


def near_misses(path: str | os.PathLike, n: int = 3) -> str:
    """Where a missing ``path`` might be: the close names in its folder, or the nearest folder
    that exists (``""`` when nothing helps)."""
    path = Path(path).expanduser()
    parent = path.parent
    if parent.is_dir():
        try:
            names = sorted(p.name for p in parent.iterdir())
        except OSError:
            return ""
        close = difflib.get_close_matches(path.name, names, n=n, cutoff=0.6)
        if close:
            return "; near misses in " + f"{parent}: " + ", ".join(close)
        return ""
    ancestor = parent
    while not ancestor.is_dir() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    return f"; the folder {parent} does not exist (nearest existing folder: {ancestor})"


def file_not_found(path: str | os.PathLike, expected: str = "") -> str:
    """``"<path>: file not found[; near misses ...][; expected ...]"``."""
    return f"{path}: not found" + near_misses(path) + (f"; expected {expected}" if expected else "")


# ----------------------------------------------------------------------------- the boundary
def debug_requested(argv: Sequence[str] = ()) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def add_debug_flag(parser) -> None:
    """Document ``--debug`` in an argparse parser's help (``run_cli`` acts on it and removes it
    from the arguments before ``main`` parses them)."""
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help=f"show the traceback of an error (also: {DEBUG_ENV}=1)")


def run_cli(main_fn: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main_fn(argv)`` inside the error boundary and return the exit code.

    A ``DgtrsError`` -> one line ``error: ...`` on stderr and its ``exit_code``; an ``OSError``
    or ``MemoryError`` -> one line and 8; Ctrl-C -> 130; anything else is a bug: its traceback
    and 1. ``--debug`` / ``DGTRS_DEBUG=1`` print the traceback of every error. argparse's own
    ``SystemExit`` (``--help``, usage errors: 2) passes through.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        code = main_fn(argv)
        return EXIT_OK if code is None else int(code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DgtrsError as err:
        if debug:
            traceback.print_exc()
        print(one_line(f"error: {err}"), file=sys.stderr)
        return err.exit_code
    except (OSError, MemoryError) as err:
        if debug:
            traceback.print_exc()
        print(one_line(f"error: {type(err).__name__}: {err}"), file=sys.stderr)
        return EXIT_SYSTEM
    except Exception as err:  # a bug: the traceback is what a report needs
        traceback.print_exc()
        print(one_line(f"error: internal error {type(err).__name__}: {err} -- this is a bug in dgtrs_lib; "
                       "please report it with the traceback above"), file=sys.stderr)
        return EXIT_INTERNAL


# ----------------------------------------------------------------------------- argument parsing
def _parser_class():
    import argparse

    class CliParser(argparse.ArgumentParser):
        """An ``ArgumentParser`` whose usage errors are ``UsageError`` s (one line through
        ``run_cli``, exit code 2) and whose help lists ``--debug``."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            add_debug_flag(self)

        def error(self, message):
            raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    return CliParser


def cli_parser(*args, **kwargs):
    """The argument parser of every entry point (see ``CliParser`` above)."""
    return _parser_class()(*args, **kwargs)


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer >= 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value
