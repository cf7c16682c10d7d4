"""The CLI's error boundary: every failure becomes an exit code and a one-line message."""
from __future__ import annotations

import errno
import os

import click

from ..errors import GenbenchError


class ErrorBoundary:
    """The one boundary that turns failures into exit codes and one-line messages.

    0 success; 1 only for a gate's regression (``check`` exits with it itself); 2 for every
    usage, input or environment error, including a full disk or an unreadable file (OSError) and
    anything unexpected (reported as an internal error; ``GENBENCH_DEBUG=1`` shows the traceback);
    130 when interrupted (Ctrl-C).
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            _fail(ctx, f"{exc.format_message()} (see {where} --help)", exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except GenbenchError as exc:
            _fail(ctx, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)
        except OSError as exc:
            _fail(ctx, describe_os_error(exc), 2)
        except Exception as exc:  # noqa: BLE001  a bug must still not look like a regression (exit 1)
            if os.environ.get("GENBENCH_DEBUG"):
                raise
            _fail(ctx, f"internal error ({type(exc).__name__}: {exc}); this is a bug in genbench, please report it "
                       "(GENBENCH_DEBUG=1 shows the traceback)", 2)


def _fail(ctx: click.Context, message: str, code: int) -> None:
    click.echo("error: " + " ".join(message.split()), err=True)
    ctx.exit(code)


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: what failed, on which file, and a hint for a full disk."""
    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = "; free some space or write elsewhere" if exc.errno == errno.ENOSPC else ""
    return f"{where}{reason}{hint}"


class GenbenchGroup(ErrorBoundary, click.Group):
    """The ``genbench`` group: its subcommands run inside the error boundary."""
