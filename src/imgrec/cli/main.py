"""``imgrec VERB ...``: the grammar, logging set-up, and error -> exit code mapping.

Exit codes: 0 ok, 1 internal error, 2 usage, 65 bad data, 66 missing input,
73 cannot create output, 130 interrupted (after a clean save).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from imgrec import __version__
from imgrec.cli import (
    cutout_cmd,
    data_cmds,
    demo,
    export_cmd,
    faces_cmd,
    import_cmd,
    predict_cmd,
    run_cmds,
    segment_cmd,
    serve_cmd,
)
from imgrec.cli.output import console, error_console
from imgrec.errors import ImgrecError, TrainingInterrupted

EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_CANNOT_WRITE = 1, 130, 73


class Parser(argparse.ArgumentParser):
    """argparse's parser, except that an argument starting with ``-`` and a digit is a value.

    Python 3.11's argparse takes only plain numbers (``-5``, ``-0.5``) as values: ``--points -5,5``,
    ``--box -10,-10,50,50`` or ``-1e-3`` failed with "expected one argument", as if they were
    options. This is the rule of newer Pythons' argparse (the same pattern), for every subcommand
    (subparsers are made of the parser's own class). No imgrec option is a dash and a digit: only
    arguments that were errors before parse differently.

    Example:
        >>> p = Parser(prog="x")
        >>> _ = p.add_argument("--points", action="append")
        >>> p.parse_args(["--points", "-5,5", "--points", "-.5,2:0"]).points
        ['-5,5', '-.5,2:0']
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._negative_number_matcher = re.compile(r"-\.?\d")  # matched at the start of the argument


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="imgrec",
        description="Self-hosted image recognition: check data, train, evaluate, predict, compare.",
    )
    parser.add_argument("--version", action="version", version=f"imgrec {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_cmds.register(sub)
    run_cmds.register(sub)
    predict_cmd.register(sub)
    cutout_cmd.register(sub)
    demo.register(sub)
    serve_cmd.register(sub)
    export_cmd.register(sub)
    import_cmd.register(sub)
    faces_cmd.register(sub)
    segment_cmd.register(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = RichHandler(console=error_console, show_path=False, show_time=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except TrainingInterrupted as exc:
        error_console.print(f"[yellow]interrupted:[/] {exc}")
        return EXIT_INTERRUPTED
    except ImgrecError as exc:
        error_console.print(f"[red]error:[/] {exc}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        error_console.print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED
    except PermissionError as exc:
        error_console.print(f"[red]error:[/] permission denied: {exc.filename or exc}", highlight=False)
        return EXIT_CANNOT_WRITE
    except Exception as exc:  # a bug: say so plainly, traceback only with --debug
        if args.debug:
            console.print_exception()
        error_console.print(
            f"[red]internal error:[/] {type(exc).__name__}: {exc}\n"
            "This is a bug in imgrec; run again with --debug for the traceback and report it.",
            highlight=False,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
