"""What a fault test asserts once its load has stopped: nothing the platform acknowledged is
lost or duplicated, anywhere it should be.

- Drafting: each acknowledged change is one event on policy.drafting.v1 (one event id; a
  record re-sent under the same id is the outbox's documented at-least-once, absorbed by the
  inboxes) and the draft in the database is as the last answer said.
- Comments: each acknowledged comment is stored once, has its CommentReceived event, and is
  counted by publication, by evaluation and in its consultation's closing totals.
- Tasks: every lifecycle event yields exactly the playbook's tasks (computed here with the
  engine's own planner), each announced by one TaskCreated; each acknowledged completion is
  stored and announced by one TaskCompleted; a withdrawn draft's tasks are all cancelled.
- Consumers: every consumer group's inbox holds every event of its topics about the drafts,
  and its committed offsets reached the end of its topics (lag 0): it resumed where it was.
- Outboxes are empty, and no record was dead-lettered since the audit began."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import asyncpg
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from policy.communication.v1 import events_pb2 as task_events
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policykit import reference, topics
from policykit.envelope import Event, from_record
from services.communication import playbook
from services.communication.handlers import regulation_from_draft
from services.communication.planner import plan
from tests.faults.load import Ledger
from tests.support import PLATFORM_SERVICES, eventually

DECLARATION = topics.load()
# The topics the services publish lifecycle events to.
LIFECYCLE_TOPICS = ("policy.drafting.v1", "policy.consultation.v1", "policy.publication.v1",
                    "policy.communication.v1", "policy.evaluation.v1")
DEAD_LETTER_TOPICS = tuple(sorted(DECLARATION.dead_letter_topics.values()))
# The groups whose handlers record what they handled in their schema's inbox.
INBOX_GROUPS = ("consultation", "publication", "evaluation", "communication")
EVENT_OF_CALL = {
    "RegisterDraft": drafting.DraftRegistered, "ReviseDraft": drafting.DraftRevised,
    "SubmitForConsultation": drafting.DraftSubmittedForConsultation,
    "AdoptDraft": drafting.DraftAdopted, "WithdrawDraft": drafting.DraftWithdrawn,
}
REFERENCE = reference.default()
PLAYBOOK = playbook.load(playbook.DEFAULT_PATH, REFERENCE)
SHOWN = 15  # findings of one kind listed in a failure


def name_of(message_type) -> str:
    return message_type.DESCRIPTOR.full_name


@dataclass
class Findings:
    """Discrepancies, each with the number of items it concerns."""
    lost: list[tuple[int, str]] = field(default_factory=list)
    duplicated: list[tuple[int, str]] = field(default_factory=list)
    # What must reach zero once the platform has settled: consumer lag, outbox backlogs.
    unsettled: list[str] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)
    resent: int = 0  # records published again under an event id already on their topic

    def compare(self, what: str, expected: Counter, actual: Counter) -> None:
        """Reports what `expected` has more of as lost, what `actual` has more of as
        duplicated; each key names an item, e.g. (regulation, event type)."""
        for key, count in (expected - actual).items():
            self.lost.append((count, f"{what}: {key}"))
        for key, count in (actual - expected).items():
            self.duplicated.append((count, f"{what}: {key}"))

    @property
    def losses(self) -> int:
        return sum(count for count, _ in self.lost)

    @property
    def duplicates(self) -> int:
        return sum(count for count, _ in self.duplicated)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.unsettled or self.dead_letters)

    def report(self) -> str:
        sections = [("lost", [f"{n} × {what}" for n, what in self.lost]),
                    ("duplicated", [f"{n} × {what}" for n, what in self.duplicated]),
                    ("not settled", self.unsettled), ("dead letters", self.dead_letters)]
        return "\n".join(f"{title} ({len(lines)}):\n  " + "\n  ".join(lines[:SHOWN])
                         for title, lines in sections if lines)


def end_offsets(consumer: KafkaConsumer, names) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(topic, p) for topic in names
                  for p in consumer.partitions_for_topic(topic)]
    return consumer.end_offsets(partitions)


@dataclass
class Snapshot:
    """What the services' databases hold about the audited drafts."""
    drafts: dict[str, tuple[int, int]]           # regulation -> (state, version)
    comments: list[asyncpg.Record]               # regulation_id, idempotency_key, comment_id
    tasks: list[asyncpg.Record]                  # task_id, regulation_id, kind, owner, status
    counted: dict[str, dict[str, int]]           # service -> regulation -> comments counted
    inbox: dict[str, set[str]]                   # consumer group -> event ids handled
    backlog: dict[str, int]                      # schema -> unpublished events


async def read_databases(database_url: str, regulations: list[str],
                         event_ids: dict[str, list[str]]) -> Snapshot:
    conn = await asyncpg.connect(database_url)
    try:
        async def pairs(sql: str) -> dict:
            return {row[0]: row[1] for row in await conn.fetch(sql, regulations)}

        drafts = {row["regulation_id"]: (row["state"], row["version"]) for row in await conn.fetch(
            "SELECT regulation_id, state, version FROM drafting.drafts"
            " WHERE regulation_id = ANY($1::text[])", regulations)}
        comments = await conn.fetch(
            "SELECT k.regulation_id, c.idempotency_key, c.comment_id::text AS comment_id"
            " FROM consultation.comments c JOIN consultation.consultations k"
            " USING (consultation_id) WHERE k.regulation_id = ANY($1::text[])", regulations)
        tasks = await conn.fetch(
            "SELECT task_id::text AS task_id, regulation_id, kind, owner_org_id, status"
            " FROM communication.tasks WHERE regulation_id = ANY($1::text[])", regulations)
        counted = {
            "publication": await pairs(
                "SELECT regulation_id, sum(comments_received) FROM publication.consultations"
                " WHERE regulation_id = ANY($1::text[]) GROUP BY regulation_id"),
            "evaluation": await pairs(
                "SELECT regulation_id, count(*) FROM evaluation.comments"
                " WHERE regulation_id = ANY($1::text[]) GROUP BY regulation_id")}
        inbox = {group: {row[0] for row in await conn.fetch(
            f"SELECT event_id FROM {group}.inbox WHERE consumer = $1"
            " AND event_id = ANY($2::text[])", group, ids)} for group, ids in event_ids.items()}
        backlog = {schema: await conn.fetchval(
            f"SELECT count(*) FROM {schema}.outbox")
            for schema in PLATFORM_SERVICES}
        backlog["consultation (event batches)"] = await conn.fetchval(
            "SELECT coalesce(sum(events), 0) FROM consultation.event_batches"
            " WHERE published_at IS NULL")
        return Snapshot(drafts, comments, tasks, counted, inbox, backlog)
    finally:
        await conn.close()


class Audit:
    """Reads, from the moment it is made (before the load starts), what the platform puts on
    its topics; check() compares that and the databases with a ledger."""

    def __init__(self, bootstrap: str, database_url: str, timeout: float = 120):
        self.database_url = database_url
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        # Whatever earlier tests left on the topics is consumed first, so that what follows
        # (dead letters above all) belongs to this test.
        eventually(lambda: not self._lag(), timeout=timeout, what="consumers caught up")
        self.start = end_offsets(self.consumer, LIFECYCLE_TOPICS + DEAD_LETTER_TOPICS)
        self.consumer.assign(list(self.start))
        for partition, offset in self.start.items():
            self.consumer.seek(partition, offset)
        self.records: dict[str, list] = defaultdict(list)

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()

    def _catch_up(self, timeout: float = 120) -> None:
        """Reads what was added to the topics since the last call."""
        ends = self.consumer.end_offsets(list(self.start))
        deadline = time.monotonic() + timeout
        while any(self.consumer.position(p) < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read the topics within {timeout} s")
            for partition, records in self.consumer.poll(timeout_ms=500).items():
                self.records[partition.topic] += (
                    records if partition.topic in DEAD_LETTER_TOPICS else
                    [from_record(r.key, r.value, r.headers) for r in records])

    def _lag(self) -> list[str]:
        behind = []
        for group, consumed in DECLARATION.consumes.items():
            for topic in consumed:
                group_id = DECLARATION.kafka_group_id(group, topic)
                committed = self.admin.list_group_offsets({group_id: None})[group_id]
                for partition, end in end_offsets(self.consumer, [topic]).items():
                    at = committed[partition].offset if partition in committed else 0
                    if end > max(at, 0):
                        behind.append(f"group {group_id} is {end - max(at, 0)} behind on "
                                      f"{topic}[{partition.partition}]")
        return behind

    def check(self, ledger: Ledger) -> Findings:
        self._catch_up()
        findings = Findings(unsettled=self._lag())
        regulations = set(ledger.changes)
        mine: dict[str, dict[str, Event]] = {}
        for topic in LIFECYCLE_TOPICS:
            ours = [e for e in self.records[topic] if e.regulation_id in regulations]
            mine[topic] = {e.id: e for e in ours}
            findings.resent += len(ours) - len(mine[topic])
        event_ids = {group: [i for topic in DECLARATION.consumes[group]
                             for i in mine.get(topic, ())] for group in INBOX_GROUPS}
        db = asyncio.run(read_databases(self.database_url, sorted(regulations), event_ids))
        self._drafts(findings, ledger, mine["policy.drafting.v1"], db)
        self._comments(findings, ledger, mine["policy.consultation.v1"], db)
        self._tasks(findings, ledger, mine, db)
        self._inboxes(findings, mine, db)
        findings.unsettled += [f"{schema}: {n} event(s) unpublished in the outbox"
                               for schema, n in db.backlog.items() if n]
        findings.dead_letters = [
            f"{r.topic}: {dict(r.headers).get('dlq_reason', b'').decode(errors='replace')}"
            for topic in DEAD_LETTER_TOPICS for r in self.records[topic]]
        return findings

    def settle(self, ledger: Ledger, timeout: float) -> Findings:
        """Checks until everything is found and drained, or the deadline passes; returns the
        last findings."""
        deadline = time.monotonic() + timeout
        while True:
            findings = self.check(ledger)
            if findings.clean or time.monotonic() > deadline:
                return findings
            time.sleep(2)

    @staticmethod
    def _drafts(findings: Findings, ledger: Ledger, events: dict[str, Event],
                db: Snapshot) -> None:
        expected = Counter(
            (regulation, name_of(EVENT_OF_CALL[c.method]),
             0 if c.method == "WithdrawDraft" else c.version)
            for regulation, changes in ledger.changes.items() for c in changes)
        published = Counter((e.regulation_id, e.type, getattr(e.payload, "version", 0))
                            for e in events.values())
        findings.compare("drafting event (regulation, type, version)", expected, published)
        answered = Counter((r, changes[-1].state, changes[-1].version)
                           for r, changes in ledger.changes.items())
        stored = Counter((r, *db.drafts[r]) for r in ledger.changes if r in db.drafts)
        findings.compare("draft as last answered (regulation, state, version)", answered, stored)

    @staticmethod
    def _comments(findings: Findings, ledger: Ledger, events: dict[str, Event],
                  db: Snapshot) -> None:
        acknowledged = Counter((r, key, comment_id or "(bulk)")
                               for r, keys in ledger.comments.items()
                               for key, comment_id in keys.items())
        bulk = {(r, key) for r, key, comment_id in acknowledged if comment_id == "(bulk)"}
        stored = Counter((row["regulation_id"], row["idempotency_key"],
                          "(bulk)" if (row["regulation_id"], row["idempotency_key"]) in bulk
                          else row["comment_id"]) for row in db.comments)
        findings.compare("stored comment (regulation, key, id)", acknowledged, stored)
        announced = Counter(e.payload.comment_id for e in events.values()
                            if isinstance(e.payload, consultation.CommentReceived))
        findings.compare("CommentReceived of a stored comment",
                         Counter(row["comment_id"] for row in db.comments), announced)
        totals = Counter({r: len(keys) for r, keys in ledger.comments.items()})
        for service, counted in db.counted.items():
            findings.compare(f"comments counted by {service}", totals, Counter(counted))
        closed = Counter()
        for e in events.values():
            if isinstance(e.payload, consultation.ConsultationClosed):
                closed[e.regulation_id] += e.payload.total_comments
        findings.compare("comments in the ConsultationClosed totals",
                         Counter({r: totals[r] for r in ledger.adopted()}), closed)

    @staticmethod
    def _tasks(findings: Findings, ledger: Ledger, mine: dict[str, dict[str, Event]],
               db: Snapshot) -> None:
        consumed = [e for topic in DECLARATION.consumes["communication"]
                    for e in mine.get(topic, {}).values()]
        registered = {e.regulation_id: regulation_from_draft(e.payload) for e in consumed
                      if isinstance(e.payload, drafting.DraftRegistered)}
        planned = Counter((e.regulation_id, task.kind, task.owner_org_id) for e in consumed
                          if e.regulation_id in registered
                          for task in plan(PLAYBOOK, e, registered[e.regulation_id], REFERENCE))
        stored = Counter((row["regulation_id"], row["kind"], row["owner_org_id"])
                         for row in db.tasks)
        findings.compare("task (regulation, kind, owner)", planned, stored)
        task_news = [e.payload for e in mine["policy.communication.v1"].values()]
        findings.compare("TaskCreated of a stored task",
                         Counter(row["task_id"] for row in db.tasks),
                         Counter(p.task.task_id for p in task_news
                                 if isinstance(p, task_events.TaskCreated)))
        status = {row["task_id"]: row["status"] for row in db.tasks}
        completed = Counter(list(ledger.completed))
        findings.compare("completed task", completed,
                         Counter(t for t in completed
                                 if status.get(t) == task_pb2.TASK_STATUS_COMPLETED))
        findings.compare("TaskCompleted of an acknowledged completion", completed,
                         Counter(p.task_id for p in task_news
                                 if isinstance(p, task_events.TaskCompleted)))
        withdrawn = {r for r, changes in ledger.changes.items()
                     if changes[-1].method == "WithdrawDraft"}
        findings.compare("cancelled task of a withdrawn draft",
                         Counter(row["task_id"] for row in db.tasks
                                 if row["regulation_id"] in withdrawn),
                         Counter(row["task_id"] for row in db.tasks
                                 if row["regulation_id"] in withdrawn
                                 and row["status"] == task_pb2.TASK_STATUS_CANCELLED))

    @staticmethod
    def _inboxes(findings: Findings, mine: dict[str, dict[str, Event]], db: Snapshot) -> None:
        for group in INBOX_GROUPS:
            events = [(i, e) for topic in DECLARATION.consumes[group]
                      for i, e in mine.get(topic, {}).items()]
            findings.compare(f"event (type, regulation) in the inbox of {group}",
                             Counter((e.type, e.regulation_id) for _, e in events),
                             Counter((e.type, e.regulation_id) for i, e in events
                                     if i in db.inbox[group]))

def summary(test: str, seed: int, seconds: float, ledger: Ledger, findings: Findings,
            **faults: int) -> str:
    """One line of figures for the README's reliability section."""
    calls = ", ".join(f"{method} {n}" for method, n in sorted(ledger.calls.items()))
    return (f"{test}: seed {seed}, {seconds:.0f} s, "
            + "".join(f"{what} {n}, " for what, n in faults.items())
            + f"{sum(ledger.calls.values())} acknowledged calls ({calls}), "
            f"{len(ledger.changes)} drafts, "
            f"{sum(len(k) for k in ledger.comments.values())} comments, "
            f"{findings.resent} records re-sent under their event id, "
            f"losses {findings.losses}, duplicates {findings.duplicates}")
