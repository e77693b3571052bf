"""One entry point for the command lines' errors: a message, exit status 2, no traceback.

Every ``python -m slics...`` command (the pipeline's stages, the checks, the tools) ends with
``sys.exit(run_main(main))``. An expected error (bad input, a missing file, a full disk, a
failed stage) prints ``<command>: error: <message>`` on stderr and exits with status 2; with
``--debug`` on the command line or ``SLICS_DEBUG=1`` the traceback is shown instead. Ctrl-C
exits with 130 and a one-line message.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from .config import env_flag

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
# What a user can cause and fix: bad values, missing or unreadable files, full disks, a stage
# that failed, a model that cannot be had offline (RuntimeError subclasses of the project).
EXPECTED = (ValueError, TypeError, KeyError, LookupError, OSError, RuntimeError, MemoryError)


def _message(err: BaseException) -> str:
    if isinstance(err, MemoryError):
        return f"out of memory{': ' + str(err) if str(err) else ''}; reduce the size that the message names"
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err) or type(err).__name__


def run_main(main: Callable[[list[str] | None], int], argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run ``main(argv)``; expected errors become one line and exit status 2 (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or env_flag("SLICS_DEBUG")
    argv = [a for a in argv if a != "--debug"]
    prog = prog or (getattr(sys.modules.get("__main__"), "__spec__", None) and sys.modules["__main__"].__spec__.name) \
        or "slics"
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EXPECTED as err:
        if debug:
            raise
        print(f"{prog}: error: {_message(err)}", file=sys.stderr)
        print(f"{prog}: (run with --debug or SLICS_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR
