"""The `policyctl` command: global options, the connection to the services, and the command
groups (drafts, tasks, consultation, scorecards, timeline, events, dead-letters)."""

from __future__ import annotations

import click

from policyctl import (consultation, dead_letters, drafts, errors, events, scorecards, tasks,
                       timeline)
from policyctl.output import Output
from policyctl.session import Session
from policyctl.settings import DEFAULT_TARGETS, Settings, target_variable


class PolicyGroup(click.Group):
    """The root group: errors from the services become messages and exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except errors.CommandError as error:
            error.as_json = ctx.obj.json
            raise
        except Exception as error:  # noqa: BLE001 — translated or re-raised unchanged
            translated = errors.translated(error)
            if translated is None:
                raise
            translated.as_json = ctx.obj.json
            raise translated from error


def _parse_targets(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    targets = {}
    for value in values:
        service, sep, address = value.partition("=")
        if not sep or service not in DEFAULT_TARGETS or not address:
            raise click.BadParameter(f"{value!r}: expected SERVICE=HOST:PORT with SERVICE one of "
                                     f"{', '.join(DEFAULT_TARGETS)}")
        targets[service] = address
    return targets


@click.group(cls=PolicyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "json_mode", is_flag=True,
              help="Print JSON for scripts instead of tables (errors too, on stderr).")
@click.option("--target", "targets", multiple=True, callback=_parse_targets,
              metavar="SERVICE=HOST:PORT",
              help="A service's gRPC address; repeatable. Default: "
                   f"${target_variable('<service>')}, else the local platform's.")
@click.option("--bootstrap-servers", envvar="KAFKA_BOOTSTRAP_SERVERS", show_envvar=True,
              help="Kafka, for the events and dead-letters commands.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds a call to a service may take.")
@click.option("--token", envvar="POLICYCTL_TOKEN", show_envvar=True,
              help="Your organisation's bearer token, for services with AUTH_MODE=tokens; "
                   "prefer the variable, which other users cannot see in the process list.")
@click.version_option(package_name="policy-lifecycle-platform")
@click.pass_context
def cli(ctx: click.Context, json_mode: bool, targets: dict[str, str],
        bootstrap_servers: str | None, timeout: float, token: str | None) -> None:
    """Work with the regulation lifecycle platform: drafts, communication tasks, comments,
    scorecards, timelines, events and dead letters.

    Exit codes: 0 done, 1 failed, 2 bad command line, 3 input refused (the fields are
    named), 4 not found, 5 not allowed in the current state, 6 service unreachable or busy,
    7 not authenticated or not permitted, 8 bulk import with rejected rows."""
    session = Session(Settings.from_environment(targets, bootstrap_servers, timeout, token),
                      Output(json_mode))
    ctx.obj = session
    ctx.call_on_close(session.close)


for module in (drafts, tasks, consultation, scorecards, timeline, events, dead_letters):
    cli.add_command(module.command)


def main() -> None:
    cli(prog_name="policyctl")
