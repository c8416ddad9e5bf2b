"""`policyctl events`: any topic of the platform, record by record, decoded to JSON."""

from __future__ import annotations

import base64
import difflib
import json
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

import click
from kafka.consumer.fetcher import ConsumerRecord

from policykit.envelope import EVENT_TYPES, EnvelopeError, from_record
from policykit.topic_reader import TopicReader, header
from policyctl.broker import client_settings, kafka_errors
from policyctl.output import VIETNAM, as_dict
from policyctl.session import Session, pass_session

# DraftRegistered → policy.drafting.v1.DraftRegistered (short names are unique).
FULL_TYPES = {name.rsplit(".", 1)[1]: name for name in EVENT_TYPES}


@click.group("events")
def command():
    """Read the platform's topics: lifecycle events decoded to JSON, headers included."""


def _event_types(ctx, param, values: tuple[str, ...]) -> set[str]:
    types = set()
    for value in values:
        if "." in value:
            # A full name is taken as it is: a dead-letter topic may hold types no longer known.
            types.add(value)
        elif value in FULL_TYPES:
            types.add(FULL_TYPES[value])
        else:
            close = difflib.get_close_matches(value, FULL_TYPES, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise click.BadParameter(f"{value!r} is not a lifecycle event type{hint}")
    return types


@command.command("tail")
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record kept.")
@click.option("--last", type=click.IntRange(min=1), metavar="N",
              help="Start N offsets before the end of each partition.")
@click.option("--partition", type=click.IntRange(min=0), metavar="P",
              help="Read only this partition.")
@click.option("--offset", type=click.IntRange(min=0), metavar="N",
              help="Start at this offset of --partition.")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Wait for new records until Ctrl-C, or stop at the end offsets the topic "
                   "had when the command started.")
@click.option("--max-records", type=click.IntRange(min=1), metavar="N",
              help="Stop after printing N records.")
@click.option("--type", "types", multiple=True, callback=_event_types, metavar="TYPE",
              help="Only events of this ce_type, short (DraftRegistered) or full "
                   "(policy.drafting.v1.DraftRegistered); repeatable.")
@click.option("--key", "keys", multiple=True, metavar="REGULATION_ID",
              help="Only records with this key, the regulation id; repeatable.")
@pass_session
def tail(session: Session, topic: str, from_beginning: bool, last: int | None,
         partition: int | None, offset: int | None, follow: bool, max_records: int | None,
         types: set[str], keys: tuple[str, ...]) -> None:
    """Print the records of TOPIC decoded to JSON.

    Each record with its topic, partition, offset, timestamp, key, every header (ce_*, and
    dlq_* on dead-letter topics) and its payload: a lifecycle event in protobuf's JSON
    mapping (field names as in the .proto), or the JSON document on policy.open-data.v1. A
    record that cannot be decoded is printed with the error and its value in base64.

    By default only records produced from now on, until Ctrl-C. Nothing is committed and no
    consumer group is joined: the platform's consumers are not disturbed. With --json, one
    JSON object per line (JSON Lines).

    \b
    Examples:
      policyctl events tail policy.drafting.v1 --last 5 --no-follow
      policyctl events tail policy.consultation.v1 --key luat-dat-dai-2024
      policyctl --json events tail policy.dlq.communication --from-beginning --no-follow
      policyctl events tail policy.drafting.v1 --partition 2 --offset 1200 --max-records 10
    """
    if sum((from_beginning, last is not None, offset is not None)) > 1:
        raise click.UsageError("choose one of --from-beginning, --last and --offset")
    if offset is not None and partition is None:
        raise click.UsageError("--offset needs --partition: offsets are per partition")
    with kafka_errors(session), TopicReader(session.settings.bootstrap_servers, topic, partition,
                                            **client_settings(session)) as reader:
        if last is not None:
            reader.seek({tp: end - last for tp, end in reader.ends.items()})
        elif offset is not None:
            reader.seek({tp: offset for tp in reader.partitions})
        elif not from_beginning:
            reader.seek(reader.ends)
        printed = 0
        try:
            for record in reader.records(follow):
                if types and header(record, "ce_type") not in types:
                    continue
                if keys and _text(record.key) not in keys:
                    continue
                _show(session, document(record))
                printed += 1
                if printed == max_records:
                    break
        except KeyboardInterrupt:
            pass  # how a follow ends: not a failure


def document(record: ConsumerRecord) -> dict[str, Any]:
    """The record as JSON: where it is, its key and headers as text, and its payload decoded,
    or the decode error and the raw value in base64."""
    decoded: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": None if record.timestamp < 0 else datetime.fromtimestamp(
            record.timestamp / 1000, timezone.utc).isoformat(timespec="milliseconds"),
        "key": _text(record.key),
        "headers": _headers(record),
    }
    try:
        decoded["payload"] = _payload(record)
    except ValueError as error:  # EnvelopeError, JSONDecodeError, UnicodeDecodeError
        decoded["error"] = error.reason if isinstance(error, EnvelopeError) else str(error)
        decoded["value_base64"] = base64.b64encode(record.value or b"").decode("ascii")
    return decoded


def _payload(record: ConsumerRecord) -> Any:
    if record.value is None:
        return None  # a tombstone on a compacted topic
    content_type = header(record, "content-type").split(";")[0].strip()
    # The open-data topic carries JSON documents (services/publication/OPEN_DATA.md).
    if content_type == "application/json":
        return json.loads(record.value)
    return as_dict(from_record(record.key, record.value, record.headers).payload)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "backslashreplace")


def _headers(record: ConsumerRecord) -> dict[str, Any]:
    """Headers by name, as text; a name that repeats has the list of its values."""
    values = defaultdict(list)
    for name, raw in record.headers or ():
        values[name].append(_text(raw))
    return {name: found[0] if len(found) == 1 else found for name, found in values.items()}


def _show(session: Session, decoded: dict[str, Any]) -> None:
    if session.json:
        click.echo(json.dumps(decoded, ensure_ascii=False))
        return
    when = "-" if decoded["timestamp"] is None else datetime.fromisoformat(
        decoded["timestamp"]).astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S %Z")
    kind = decoded["headers"].get("ce_type") or decoded["headers"].get("content-type") or "-"
    line = (f"── {decoded['topic']}[{decoded['partition']}]@{decoded['offset']}  {when}  "
            f"key={decoded['key']}  {str(kind).rsplit('.', 1)[-1]}")
    click.echo(click.style(line, bold=True))
    if "error" in decoded:
        click.echo(click.style(f"not decoded: {decoded['error']}", fg="yellow"))
    click.echo(json.dumps(decoded, ensure_ascii=False, indent=2))
