"""`policyctl dead-letters`: the records a consumer group could not handle, listed and
replayed to the topics they came from (policykit.dead_letters)."""

from __future__ import annotations

import functools
import re
from collections import Counter
from datetime import datetime
from typing import Any, Callable

import click
from kafka.consumer.fetcher import ConsumerRecord

from policykit import topics
from policykit.dead_letters import Selection, dead_letters, describe, replay, replayable
from policyctl import errors
from policyctl.broker import client_settings, kafka_errors
from policyctl.output import VIETNAM
from policyctl.session import Session, pass_session

GROUPS = topics.load().dead_letter_topics  # consumer group -> its dead-letter topic
LIST_COLUMNS = ("at", "failed at", "from", "type", "event id", "key", "reason")
# Narrower: the preview before a confirmation must fit a terminal.
REPLAY_COLUMNS = ("at", "from", "type", "key", "reason", "to")


@click.group("dead-letters")
def command():
    """The records a consumer group could not handle, and replaying them.

    Each consumer group (one per service) has a dead-letter topic, policy.dlq.<group>, with
    every record it could not decode, or whose event its handler rejected or kept failing
    on. A dead letter keeps its key, value and headers and gains dlq_* headers: the reason,
    the source topic, partition and offset, the group, the time. The group moved on:
    nothing is blocked, but that event is not applied until it is replayed."""


def _regex(ctx, param, value: str | None) -> re.Pattern | None:
    try:
        return None if value is None else re.compile(value)
    except re.error as error:
        raise click.BadParameter(f"not a regular expression: {error}") from None


def _selection_options(function: Callable) -> Callable:
    """Adds GROUP or --topic and the filters; the command gets `topic` and `selection`."""

    @functools.wraps(function)
    def command_with_selection(group, topic, reason, source_topic, partition, from_offset,
                               to_offset, **rest):
        if (group is None) == (topic is None):
            raise click.UsageError("name a consumer GROUP or a --topic, one of the two")
        if partition is None and (from_offset, to_offset) != (None, None):
            raise click.UsageError("--from-offset and --to-offset need --partition: offsets "
                                   "are per partition")
        selection = Selection(reason, source_topic, partition, from_offset, to_offset)
        return function(topic=topic or GROUPS[group], selection=selection, **rest)

    for option in reversed((
        click.argument("group", required=False, metavar="[GROUP]",
                       type=click.Choice(sorted(GROUPS))),
        click.option("--topic", metavar="TOPIC",
                     help="A dead-letter topic named directly, instead of GROUP."),
        click.option("--reason", metavar="REGEX", callback=_regex,
                     help="Only dead letters whose reason matches this regular expression "
                          "(searched anywhere in it)."),
        click.option("--source-topic", metavar="TOPIC",
                     help="Only dead letters that came from this topic."),
        click.option("--partition", type=click.IntRange(min=0), metavar="P",
                     help="Only this partition of the dead-letter topic."),
        click.option("--from-offset", type=click.IntRange(min=0), metavar="N",
                     help="Start at this dead-letter offset (with --partition)."),
        click.option("--to-offset", type=click.IntRange(min=0), metavar="N",
                     help="Stop after this dead-letter offset, inclusive (with --partition)."),
    )):
        command_with_selection = option(command_with_selection)
    return command_with_selection


def _read(session: Session, topic: str,
          selection: Selection) -> list[tuple[ConsumerRecord, dict[str, Any]]]:
    """The selected dead letters, each with its description."""
    with kafka_errors(session):
        records = dead_letters(session.settings.bootstrap_servers, topic, selection,
                               **client_settings(session))
    return [(record, describe(record)) for record in records]


def _rows(letters: list[dict[str, Any]], columns: tuple[str, ...]) -> list[list[str]]:
    rows = []
    for letter in letters:
        source = "-"
        if letter["source_topic"]:
            source = (f"{letter['source_topic']}[{letter['source_partition']}]"
                      f"@{letter['source_offset']}")
        cells = {"at": f"{letter['partition']}@{letter['offset']}",
                 "failed at": _local(letter["failed_at"]), "from": source,
                 "type": (letter["ce_type"] or "-").rsplit(".", 1)[-1],
                 "event id": letter["ce_id"] or "-", "key": letter["key"] or "-",
                 "reason": letter["reason"],
                 "to": letter.get("to") or f"skip: {letter.get('skip')}"}
        rows.append([cells[column] for column in columns])
    return rows


def _local(moment: str | None) -> str:
    """An RFC 3339 time in Vietnam time, to the second; left as it is if it is not one."""
    try:
        return datetime.fromisoformat(moment).astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return moment or "-"


@command.command("list")
@_selection_options
@pass_session
def list_dead_letters(session: Session, topic: str, selection: Selection) -> None:
    """List dead letters, and how many there are per reason.

    The dead letters of GROUP (a service's consumer group: its topic is policy.dlq.GROUP) or
    of --topic, oldest first per partition: their place in the dead-letter topic ("at",
    partition@offset), when they failed (Vietnam time), where they came from
    (topic[partition]@offset), the event's type, id and key (the regulation id), and the
    reason. Nothing is committed: listing changes nothing.

    \b
    Examples:
      policyctl dead-letters list communication
      policyctl dead-letters list evaluation --reason 'handler failed'
      policyctl dead-letters list publication --source-topic policy.evaluation.v1
      policyctl --json dead-letters list drafting | jq -r '.dead_letters[].ce_id'
    """
    letters = [letter for _, letter in _read(session, topic, selection)]
    by_reason = Counter(letter["reason"] for letter in letters).most_common()
    data = {"topic": topic, "dead_letters": letters,
            "by_reason": [{"reason": reason, "count": count} for reason, count in by_reason]}

    def render() -> None:
        if not letters:
            filtered = " match" if selection != Selection() else ""
            session.out.line(f"No dead letters in {topic}{filtered}.")
            return
        session.out.table(LIST_COLUMNS, _rows(letters, LIST_COLUMNS))
        session.out.line()
        session.out.line(f"{len(letters)} dead letter(s) in {topic}, by reason:")
        session.out.table(("count", "reason"), ((count, reason) for reason, count in by_reason))

    session.out.emit(data, render)


def _can_prompt() -> bool:
    return click.get_text_stream("stdin").isatty()


@command.command("replay")
@_selection_options
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; send nothing.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask before sending; needed when stdin is not a terminal.")
@pass_session
def replay_dead_letters(session: Session, topic: str, selection: Selection, dry_run: bool,
                        yes: bool) -> None:
    """Replay dead letters to the topics they came from.

    Re-produces the selected dead letters of GROUP (or --topic) to their dlq_source_topic,
    keyed as before, with their value and headers but without the dlq_* headers. Consumers
    are idempotent by event id: an event that got applied after all is absorbed, one that
    failed is handled anew (fix the cause first). A record without a usable source topic is
    skipped.

    It shows what it would send and asks before sending, unless --yes. Each record sent is
    printed as "replayed <dead-letter topic>[partition]@offset -> <topic>": keep the output
    with the incident, so a later replay can start after the last offset sent
    (--partition P --from-offset N).

    \b
    Examples:
      policyctl dead-letters replay communication --dry-run
      policyctl dead-letters replay communication --reason 'handler failed'
      policyctl dead-letters replay drafting --partition 0 --from-offset 120 --yes
    """
    letters = _read(session, topic, selection)
    for record, letter in letters:
        try:
            letter["to"], _ = replayable(record)
        except ValueError as error:
            letter["skip"] = str(error)
    chosen = [(record, letter) for record, letter in letters if "to" in letter]
    skipped = [letter for _, letter in letters if "skip" in letter]

    def preview() -> None:
        if letters:
            session.out.table(REPLAY_COLUMNS, _rows([letter for _, letter in letters],
                                                    REPLAY_COLUMNS))

    if chosen and not dry_run and not yes:
        if not _can_prompt():
            raise errors.CommandError("not replaying without --yes: stdin is not a terminal "
                                      "to confirm on", errors.USAGE, "CONFIRMATION_REQUIRED")
        if not session.json:
            preview()
        targets = ", ".join(sorted({letter["to"] for _, letter in chosen}))
        click.confirm(f"Replay {len(chosen)} record(s) from {topic} to {targets}?",
                      abort=True, err=True)
    if not dry_run:
        with kafka_errors(session):
            for record, target in replay(session.settings.bootstrap_servers,
                                         (record for record, _ in chosen),
                                         **client_settings(session)):
                if not session.json:  # as each is sent: the output says how far a replay got
                    session.out.line(f"replayed {record.topic}[{record.partition}]"
                                     f"@{record.offset} -> {target}")

    def render() -> None:
        if dry_run:
            preview()
        else:
            for letter in skipped:
                session.out.line(f"skipped {letter['topic']}[{letter['partition']}]"
                                 f"@{letter['offset']}: {letter['skip']}")
        verb = "would replay" if dry_run else "replayed"
        session.out.line(f"{verb} {len(chosen)} record(s) from {topic}; "
                         f"skipped {len(skipped)}")

    session.out.emit({"topic": topic, "dry_run": dry_run,
                      "replayed": [letter for _, letter in chosen], "skipped": skipped},
                     render)
