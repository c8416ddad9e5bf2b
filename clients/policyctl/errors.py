"""Exit codes and error messages. Every failure ends with one line (or, with --json, one JSON
object) on stderr that says what went wrong, and an exit code a script can branch on."""

from __future__ import annotations

import json
import sys

import click
import grpc

from policy_sdk.errors import ServiceError
from policykit.errors import field_violations

OK = 0
FAILED = 1             # anything not listed below
USAGE = 2              # a bad command line (click's own code)
INVALID_INPUT = 3      # the service refused the input (INVALID_ARGUMENT), fields named
NOT_FOUND = 4
CONFLICT = 5           # the current state forbids it (FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED)
UNAVAILABLE = 6        # the service or broker could not be reached in time
DENIED = 7             # UNAUTHENTICATED, PERMISSION_DENIED
PARTIAL = 8            # a bulk import stored some rows and rejected others

_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: INVALID_INPUT,
    grpc.StatusCode.OUT_OF_RANGE: INVALID_INPUT,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION: CONFLICT,
    grpc.StatusCode.ALREADY_EXISTS: CONFLICT,
    grpc.StatusCode.ABORTED: CONFLICT,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: DENIED,
    grpc.StatusCode.PERMISSION_DENIED: DENIED,
}


class CommandError(click.ClickException):
    """A failure with its exit code, message and, for refused input, the fields at fault."""

    def __init__(self, message: str, exit_code: int = FAILED, code: str | None = None,
                 fields: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code
        self.fields = fields or []
        # Set by the root command: click shows the error after the command's context is gone.
        self.as_json = False

    def show(self, file=None) -> None:
        file = file or sys.stderr
        if self.as_json:
            error = {"message": self.message, "code": self.code, "exit_code": self.exit_code,
                     "fields": [{"field": f, "description": d} for f, d in self.fields]}
            click.echo(json.dumps({"error": error}, ensure_ascii=False), file=file)
            return
        prefix = f"{self.code}: " if self.code else ""
        # The fields follow one per line; the service's message would repeat them.
        click.echo(f"error: {prefix}{'invalid input' if self.fields else self.message}",
                   file=file)
        for name, description in self.fields:
            click.echo(f"  {name}: {description}", file=file)


def from_rpc_error(error: grpc.RpcError) -> CommandError:
    code = error.code()
    details = error.details() or code.name
    return CommandError(details, _BY_STATUS.get(code, FAILED), code.name,
                        field_violations(error))


def translated(error: Exception) -> CommandError | None:
    """The CommandError for an error a command let through, or None for one it does not know."""
    if isinstance(error, ServiceError):  # the SDK's, already decoded
        violations = getattr(error, "violations", [])
        return CommandError(error.details or error.code.name,
                            _BY_STATUS.get(error.code, FAILED), error.code.name,
                            [(v.field, v.description) for v in violations])
    if isinstance(error, grpc.RpcError):
        return from_rpc_error(error)
    return None
