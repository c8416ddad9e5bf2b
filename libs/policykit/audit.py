"""The audit log (issue #9): who changed what, when, and through which request.

Every state change of the platform writes an `audit_log` row (migration 0003, append-only) in
the transaction that makes the change, so the row exists exactly when the change does. Every change emits an
event, so `policykit.outbox.enqueue` records a row per event it takes, naming it; the
consultation service's batch outbox a row per request and regulation, naming the comments'
events (a bulk import takes a few rows per thousand comments, not one each); `record` is for a
change that emits none.

Who and which request come from the context the change runs in:

| via | actor | request, request_id, idempotency_key |
|---|---|---|
| grpc | the caller's organisation (policykit.auth; `anonymous` with AUTH_MODE=none) | the method path, the call's `x-request-id` (the client's or one made for it), the request's idempotency key |
| event | `service:<schema>` | the type and id of the event being handled (policykit.jsonlog) |
| timer | `service:<schema>` | none: the service's own timers and sweeps |

Rows hold identifiers and roles only, never personal data: `detail` takes the ids of the
event's payload (task, consultation, owner organisation …), never its text.

`python -m policykit.audit` prints the log as JSON lines (docs/security.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Iterable

import asyncpg
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from policykit import auth, db, jsonlog
from policykit.envelope import Event


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a change, and through which request. `actor` None stands for the service
    itself, which the database names after the schema."""

    via: str
    actor: str | None = None
    roles: tuple[str, ...] = ()
    authenticated_by: str | None = None
    request: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None


def caller() -> Caller:
    """The caller of the change being made now: the gRPC call, else the event being handled,
    else the service's own timer."""
    try:
        principal = auth.current_principal()
    except LookupError:
        event_id = jsonlog.current_event_id.get()
        if event_id is None:
            return Caller("timer")
        return Caller("event", request=jsonlog.current_event_type.get(), request_id=event_id)
    call = auth.current_call()
    return Caller("grpc", principal.org or "anonymous", tuple(sorted(principal.roles)),
                  principal.authenticated_by, call and call.method, call and call.request_id,
                  (call and call.idempotency_key) or None)


# Built once: json.dumps with ensure_ascii=False builds an encoder a call, one per task created.
_JSON = json.JSONEncoder(ensure_ascii=False)

# The statement that writes audit rows, for any number of rows, its parameters $1–$6 given by
# `rows_arguments` (policykit.outbox writes the outbox rows of emitted events in it too, with
# parameters of its own after these). The distinct callers come as a JSON list, each row
# naming its caller by position (a batch of events has a handful of callers and thousands of
# rows); the rows' texts as text lists (policykit.db.text_list), a detail of None as an empty
# text.
INSERT = (
    "INSERT INTO audit_log (actor, actor_roles, authenticated_by, via, request, request_id,"
    " idempotency_key, action, subject, detail, event_ids)"
    " SELECT coalesce(c.actor, 'service:' || current_schema()), c.roles, c.authenticated_by,"
    " c.via, c.request, c.request_id, c.idempotency_key, r.action, r.subject, r.detail::jsonb,"
    " string_to_array(r.event_ids, ',')::uuid[]"
    f" FROM unnest($2::int[], {db.split_text_list('$3')}, {db.split_text_list('$4')},"
    f" {db.split_text_list('$5', empty_is_null=True)}, {db.split_text_list('$6')})"
    " WITH ORDINALITY"
    " AS r(caller, action, subject, detail, event_ids, n)"
    " JOIN jsonb_to_recordset($1::jsonb) AS c(n int, actor text, roles text[],"
    " authenticated_by text, via text, request text, request_id text, idempotency_key text)"
    " ON c.n = r.caller ORDER BY r.n")

Row = tuple[Caller, str, str, dict | None, list]  # caller, action, subject, detail, event ids


def emitted_rows(events: list[Event], callers: Iterable[Caller] | None = None) -> list[Row]:
    """The rows recording the changes the events describe, a row each naming it. `callers`,
    one per event, default to the current one."""
    by = [caller()] * len(events) if callers is None else callers
    return [(who, event.type, event.subject, ids_of(event.payload), [event.id])
            for who, event in zip(by, events, strict=True)]


async def record_events(conn: asyncpg.Connection, action: str, subject: str,
                        event_ids: Iterable[str | uuid.UUID], *, detail: dict | None = None,
                        callers: Iterable[Caller] | None = None) -> None:
    """Records the change that emitted the events, in the caller's open transaction: a row
    per caller naming its events. `callers`, one per event, default to the current one."""
    events_of: dict[Caller, list[str | uuid.UUID]] = {}
    if callers is None:
        events_of[caller()] = list(event_ids)
    else:
        for by, event_id in zip(callers, event_ids, strict=True):
            events_of.setdefault(by, []).append(event_id)
    await _insert(conn, [(by, action, subject, detail, ids) for by, ids in events_of.items()])


async def record(conn: asyncpg.Connection, action: str, subject: str,
                 detail: dict | None = None) -> None:
    """Records a change that emits no event, in the transaction that makes it. `detail` takes
    identifiers only, never personal data."""
    await _insert(conn, [(caller(), action, subject, detail, [])])


async def _insert(conn: asyncpg.Connection, rows: list[Row]) -> None:
    if not conn.is_in_transaction():
        raise RuntimeError("audit rows must be written in the transaction that changes the state")
    await conn.execute(INSERT, *rows_arguments(rows))


def rows_arguments(rows: list[Row]) -> tuple:
    """The parameters of INSERT that write the rows."""
    numbers: dict[Caller, int] = {}
    for by, *_ in rows:
        numbers.setdefault(by, len(numbers))
    callers = [{"n": n, "actor": by.actor, "roles": list(by.roles),
                "authenticated_by": by.authenticated_by, "via": by.via, "request": by.request,
                "request_id": by.request_id, "idempotency_key": by.idempotency_key}
               for by, n in numbers.items()]
    return (json.dumps(callers, ensure_ascii=False), [numbers[row[0]] for row in rows],
            db.text_list([action for _, action, _, _, _ in rows]),
            db.text_list([subject for _, _, subject, _, _ in rows]),
            db.text_list([_detail_json(detail) for _, _, _, detail, _ in rows]),
            # Event ids are UUIDs: a comma never occurs in them.
            db.text_list([",".join(str(event_id) for event_id in event_ids)
                          for *_, event_ids in rows]))


_json_string = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept


def _detail_json(detail: dict | None) -> str:
    """The detail as JSON text, "" for None. The ids of an emitted event's payload (every
    task the engine creates has an audit row) are written by json's own string escaper: the
    encoder's walk of a dict took twice the time."""
    if detail is None:
        return ""
    try:
        return "{" + ",".join(f"{_json_string(name)}:{_json_string(value)}"
                              for name, value in detail.items()) + "}"
    except TypeError:  # a name or a value that is not text
        return _JSON.encode(detail)


def ids_of(payload: Message) -> dict[str, str] | None:
    """The identifiers an event's payload carries besides its regulation's — its own and its
    nested messages' `*_id` fields (task, consultation, answer, owner organisation …) — the
    audit row's detail. Text fields are left out: they may hold personal data."""
    ids: dict[str, str] = {}
    _collect_ids(payload, ids)
    return ids or None


def _collect_ids(message: Message, ids: dict[str, str]) -> None:
    # A function of the module, not one nested in ids_of: a nested function that calls itself
    # is a reference cycle, left for the cyclic collector — one an event, the only garbage of
    # the kind a task-engine batch made, and a collection (~7 ms) every second or so under load.
    for name, nested in _id_fields(message.DESCRIPTOR):
        if nested:
            if message.HasField(name):
                _collect_ids(getattr(message, name), ids)
        elif value := getattr(message, name):
            ids.setdefault(name, value)


@lru_cache(maxsize=None)
def _id_fields(descriptor: Descriptor) -> tuple[tuple[str, bool], ...]:
    """(name, is a message) of the fields ids_of looks at, in field number order: single
    `*_id` strings but regulation_id, and single messages (worked out once per type: reading
    a payload's descriptors for every audit row was a tenth of the task engine's time)."""
    return tuple(
        (field.name, field.type == FieldDescriptor.TYPE_MESSAGE)
        for field in sorted(descriptor.fields, key=lambda f: f.number)
        if not field.is_repeated and (
            (field.type == FieldDescriptor.TYPE_MESSAGE and _holds_ids(field.message_type))
            or _is_id(field)))


def _is_id(field: FieldDescriptor) -> bool:
    return (field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated
            and field.name.endswith("_id") and field.name != "regulation_id")


def _holds_ids(descriptor: Descriptor, outer: tuple[Descriptor, ...] = ()) -> bool:
    """Whether a message of this type can hold a field ids_of takes: a Timestamp cannot, and
    a TaskCreated has two, which ids_of need not open."""
    if descriptor in outer:  # a recursive type: its ids are found at its first level
        return False
    return any(_is_id(field) or (field.type == FieldDescriptor.TYPE_MESSAGE
                                 and not field.is_repeated
                                 and _holds_ids(field.message_type, (*outer, descriptor)))
               for field in descriptor.fields)


async def read(database_url: str, *, schema: str | None = None, subject: str | None = None,
               actor: str | None = None, since: datetime | None = None,
               limit: int | None = None) -> list[dict]:
    """The audit rows of every service's schema (or one), oldest first, as dicts naming their
    service."""
    conn = await asyncpg.connect(database_url)
    try:
        schemas = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'audit_log'"
            " AND ($1::text IS NULL OR table_schema = $1) ORDER BY 1", schema)
        if not schemas:
            return []
        names = [row["table_schema"] for row in schemas]
        union = " UNION ALL ".join(
            f"SELECT ($5::text[])[{n}] AS service, * FROM {_quoted(name)}.audit_log"
            for n, name in enumerate(names, 1))
        rows = await conn.fetch(
            f"SELECT * FROM ({union}) AS a WHERE ($1::text IS NULL OR subject = $1)"
            " AND ($2::text IS NULL OR actor = $2) AND ($3::timestamptz IS NULL"
            " OR recorded_at >= $3) ORDER BY recorded_at, service, id LIMIT $4",
            subject, actor, since, limit, names)
    finally:
        await conn.close()
    return [{**dict(row), "detail": row["detail"] and json.loads(row["detail"])} for row in rows]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m policykit.audit",
        description="Prints the audit log of every service (or one) as JSON lines, oldest "
                    "first.")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="default: DATABASE_URL")
    parser.add_argument("--schema", help="one service's schema, e.g. drafting")
    parser.add_argument("--subject", help="a regulation id")
    parser.add_argument("--actor", help="an organisation id, or service:<name>")
    parser.add_argument("--since", type=datetime.fromisoformat,
                        help="ISO 8601, e.g. 2026-11-26T08:00:00+07:00")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    rows = asyncio.run(read(args.database_url, schema=args.schema, subject=args.subject,
                            actor=args.actor, since=args.since, limit=args.limit))
    for row in rows:
        print(json.dumps(row, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
