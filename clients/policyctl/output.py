"""How commands print: tables and short lines for people, JSON for scripts (--json). Data
goes to stdout, progress and errors to stderr, so `policyctl --json … | jq` always works."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence

import click
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table

# Officials read times in Vietnam time (UTC+07:00, no daylight saving).
VIETNAM = timezone(timedelta(hours=7), "ICT")


def as_dict(message: Message) -> dict[str, Any]:
    """The message as protobuf's canonical JSON mapping, with proto field names and every
    field present, so scripts see the same keys whatever the values."""
    return MessageToDict(message, preserving_proto_field_name=True,
                         always_print_fields_with_no_presence=True)


def moment(timestamp: Timestamp) -> str:
    """A timestamp in Vietnam time, to the minute; '-' when unset."""
    if not timestamp.seconds and not timestamp.nanos:
        return "-"
    return timestamp.ToDatetime(timezone.utc).astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M")


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(timezone.utc))
    return stamp


def label(enum_name: str, prefix: str) -> str:
    """`TASK_STATUS_IN_PROGRESS` → `in-progress`."""
    return enum_name.removeprefix(prefix).lower().replace("_", "-")


class Output:
    def __init__(self, json_mode: bool):
        self.json = json_mode
        self.console = Console(highlight=False, soft_wrap=False)
        if not self.console.is_terminal:
            # Piped into a file or a pager: wide enough that rows stay on one line.
            self.console.width = 200
        self.errors = Console(stderr=True, highlight=False)

    def emit(self, data: Any, render: Callable[[], None]) -> None:
        """Prints `data` as JSON in --json mode, else calls `render` for people."""
        if self.json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            render()

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              title: str | None = None) -> None:
        rows = list(rows)
        if not rows:
            self.line(f"{title}: none" if title else "none")
            return
        table = Table(*columns, title=title, title_justify="left", box=None,
                      header_style="bold", pad_edge=False)
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self.console.print(table)

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """Name: value lines, names aligned."""
        pairs = [(name, value) for name, value in pairs if value not in (None, "", [])]
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            click.echo(f"{name + ':':<{width + 1}} {value}")

    def line(self, text: str = "") -> None:
        click.echo(text)
