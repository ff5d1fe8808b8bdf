"""The command line: parse options, hand them to a command module, map errors to exit codes.

Each command's work lives in `keyscan.commands.<name>` and is imported only when
that command runs, so a hook pays only for what it uses.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from keyscan import __version__
from keyscan.commands import LazyGroup
from keyscan.errors import ExitCode, KeyscanError, report_error
from keyscan.pipeline import ScanOptions
from keyscan.report import FORMATS

F = TypeVar("F", bound=Callable[..., Any])


def scan_options(func: F) -> F:
    """The options every scanning command shares (see CONTRACT.md)."""
    decorators = [
        click.option(
            "--format",
            "format_",
            type=click.Choice(FORMATS),
            default="text",
            show_default=True,
            help="Report format.",
        ),
        click.option(
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write the report to FILE (atomically) instead of stdout.",
        ),
        click.option(
            "--config",
            type=click.Path(path_type=Path),
            help="Config file (default: .keyscan.yaml at the scanned root).",
        ),
        click.option(
            "--baseline",
            type=click.Path(path_type=Path),
            help="JSON report of an earlier run; findings it lists are not reported.",
        ),
        click.option("--verify", is_flag=True, help="Ask each vendor whether found keys work."),
        click.option(
            "--only-live", is_flag=True, help="Report live keys only (implies --verify)."
        ),
        click.option(
            "--show-secrets", is_flag=True, help="Print whole secrets instead of redacting them."
        ),
        click.option(
            "--include-placeholders",
            is_flag=True,
            help="Also report placeholder keys such as pe_live_0000….",
        ),
        click.option(
            "--max-archive-depth",
            type=click.IntRange(min=0),
            default=8,
            show_default=True,
            help="Open archives nested this deep (a file is 0, its members 1; 0: never open).",
        ),
        click.option(
            "--max-decompressed-bytes",
            type=ByteSize(),
            default="1GiB",
            show_default=True,
            help="Stop expanding an archive (outermost) past this many bytes (e.g. 512MiB).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


_UNIT_SHIFTS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


class ByteSize(click.ParamType):  # type: ignore[type-arg]
    """A byte count: 1073741824, 64KiB, 512M, 1GiB (K/M/G/T are powers of 1024)."""

    name = "bytes"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        import re

        match = re.fullmatch(r"\s*(\d{1,15})\s*([kmgt]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
        if match is None:
            self.fail("expected a byte count such as 1073741824, 512MiB or 1G", param, ctx)
        return int(match.group(1)) << _UNIT_SHIFTS[match.group(2).lower()]


def verbose_option(func: F) -> F:
    """`-v/--verbose` for the hook commands, which print nothing when nothing is found."""
    return click.option(
        "-v", "--verbose", is_flag=True, help="Also print the summary when nothing is found."
    )(func)


def options_from(kwargs: dict[str, Any]) -> ScanOptions:
    """Pop the shared options (and a hook command's --verbose) out of a command's kwargs."""
    return ScanOptions(
        quiet=not kwargs.pop("verbose", True),
        format=kwargs.pop("format_"),
        output=kwargs.pop("output"),
        config=kwargs.pop("config"),
        baseline=kwargs.pop("baseline"),
        verify=kwargs.pop("verify") or kwargs["only_live"],
        only_live=kwargs.pop("only_live"),
        show_secrets=kwargs.pop("show_secrets"),
        include_placeholders=kwargs.pop("include_placeholders"),
        max_archive_depth=kwargs.pop("max_archive_depth"),
        max_decompressed_bytes=kwargs.pop("max_decompressed_bytes"),
    )


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keyscan")
def cli() -> None:
    """Find API keys of PostEverywhere, RepeatPosts, PowerPost and Autoposting."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place that turns errors into exit codes and one stderr line."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        args = ["--help"]  # bare `keyscan`: the help on stdout, exit 0, as click groups do
    try:
        code = cli.main(args=args, prog_name="keyscan", standalone_mode=False)
    except KeyscanError as error:
        _fail(str(error))
    except click.BadParameter as error:
        # Not click's message: it repeats the value, and a value can be a pasted key.
        _fail(f"{_bad_value(error)} (see 'keyscan {_command(error)}--help')")
    except click.UsageError as error:
        _fail(f"{error.format_message()} (see 'keyscan {_command(error)}--help')")
    except click.exceptions.Abort:
        _fail("interrupted")
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        _fail(error.format_message())
    except BrokenPipeError:
        sys.exit(ExitCode.ERROR)
    sys.exit(int(code) if isinstance(code, int) else ExitCode.CLEAN)


def _bad_value(error: click.BadParameter) -> str:
    """click's message, except that a long value for a choice is not repeated (a pasted key)."""
    param = error.param
    if param is None or error.ctx is None or not isinstance(param.type, click.Choice):
        return error.format_message()
    import re

    short = re.match(r"'(.{1,16})' is not", error.message)  # click: "'xml' is not one of …"
    shown = f" {short.group(1)!r}" if short else ""
    choices = ", ".join(map(str, param.type.choices))
    return f"invalid value{shown} for {param.get_error_hint(error.ctx)}: expected one of {choices}"


def _command(error: click.UsageError) -> str:
    ctx = error.ctx
    if ctx is None or ctx.parent is None:
        return ""
    return f"{ctx.info_name} "


def _fail(message: str) -> None:
    sys.exit(report_error(message))
