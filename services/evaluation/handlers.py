"""Stream handlers of consumer group `evaluation`: every lifecycle, task and listening event
updates the scored items, the pre-aggregated counters and the regulation's timeline in one
transaction, exactly once however often it is delivered (the inbox). Delivery reports take
the batch path of delivery.py instead.

Misinformation signals feed the regulation's surge detector (surge.py); a surge becomes a
MisinformationAlertRaised in the outbox, which the communication playbook turns into a
rebuttal task for the lead agency's spokesperson."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import Awaitable, Callable

import asyncpg
from google.protobuf.message import Message
from prometheus_client import Counter

from policy.communication.v1 import events_pb2 as tasks
from policy.communication.v1 import task_pb2
from policy.consultation.v1 import events_pb2 as consultation
from policy.drafting.v1 import events_pb2 as drafting
from policy.evaluation.v1 import events_pb2 as evaluation
from policykit import deferred
from policykit.envelope import Event, new_event
from policykit.kafka_io import RejectedEvent
from policykit.outbox import enqueue, first_delivery
from policykit.reference import UnknownReference

from services.evaluation import labels, storage, timeline
from services.evaluation.ledger import Ledger
from services.evaluation.periods import day_of
from services.evaluation.scoring import AlertItem, CommentItem, SurveyItem, TaskItem
from services.evaluation.storage import Regulation, time_of
from services.evaluation.surge import SurgeRule, observe
from services.evaluation.units import AGENCY, NATIONAL, Units, unit_of

log = logging.getLogger(__name__)

CONSUMER = "evaluation"
SOURCE = "policy/evaluation"
TOPIC = "policy.evaluation.v1"

ALERTS_RAISED = Counter("policy_evaluation_alerts_raised_total",
                        "Misinformation surges detected and alerted.")

# Statuses a later assignment, acceptance or overdue finding does not undo.
_FINAL = (task_pb2.TASK_STATUS_COMPLETED, task_pb2.TASK_STATUS_CANCELLED)

Applier = Callable[[asyncpg.Connection, Ledger, Regulation, Event], Awaitable[str | None]]


def _uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


class Evaluation:
    """Applies consumed events to the evaluation's state."""

    def __init__(self, pool: asyncpg.Pool, units: Units, surge_rule: SurgeRule):
        self.pool = pool
        self.units = units
        self.surge_rule = surge_rule
        self._appliers: dict[type[Message], Applier] = {
            drafting.DraftRevised: self._draft_revised,
            drafting.ImpactAssessed: self._impact_assessed,
            drafting.DraftWithdrawn: self._draft_withdrawn,
            consultation.ConsultationOpened: self._consultation_opened,
            consultation.ConsultationExtended: self._consultation_extended,
            consultation.CommentReceived: self._comment_received,
            consultation.CommentAnswered: self._comment_answered,
            consultation.ConsultationClosed: self._consultation_closed,
            tasks.TaskCreated: self._task_created,
            tasks.TaskAssigned: self._task_moved,
            tasks.TaskAccepted: self._task_moved,
            tasks.TaskProgressReported: self._task_moved,
            tasks.TaskCompleted: self._task_completed,
            tasks.TaskOverdue: self._task_overdue,
            tasks.TaskCancelled: self._task_cancelled,
            evaluation.SurveyResultRecorded: self._survey_recorded,
            evaluation.MisinformationSignalObserved: self._signal_observed,
        }

    async def handle(self, event: Event) -> None:
        """Handles one delivered event in one transaction; a redelivery changes nothing."""
        self.check(event)
        async with self.pool.acquire() as conn, conn.transaction():
            if await first_delivery(conn, CONSUMER, event):
                await self.apply(conn, event)

    def check(self, event: Event) -> None:
        """Rejects, before anything is stored or deferred, content no state could make right."""
        payload = event.payload
        if isinstance(payload, tasks.DeliveryReported):
            raise RejectedEvent("ce_type: DeliveryReported belongs on "
                                "policy.delivery-reports.v1, where it is aggregated")
        if isinstance(payload, tasks.TaskCreated):
            task = payload.task
            if not _uuid(task.task_id):
                raise RejectedEvent("task.task_id: must be a UUID")
            if self.units.kind_of(unit_of(task.owner_org_id)) is None:
                raise RejectedEvent(f"task.owner_org_id: {task.owner_org_id!r} is not an office "
                                    "of an agency or province of the reference data")
            if not task.HasField("due_at"):
                raise RejectedEvent("task.due_at: must be set")
            for region in task.region_ids:
                self._check_region("task.region_ids", region)
        elif hasattr(payload, "task_id") and not _uuid(payload.task_id):
            raise RejectedEvent("task_id: must be a UUID")
        elif isinstance(payload, consultation.CommentReceived):
            if not payload.comment_id:
                raise RejectedEvent("comment_id: must not be empty")
            if payload.province_code:
                self._check_region("province_code", payload.province_code)
        elif isinstance(payload, evaluation.SurveyResultRecorded):
            if not payload.survey_id:
                raise RejectedEvent("survey_id: must not be empty")
            if payload.stage not in labels.FUNNEL_STAGES:
                raise RejectedEvent("stage: must be a stage of the know → benefit funnel")
            if not 0 <= payload.positive <= payload.respondents or payload.respondents == 0:
                raise RejectedEvent("respondents, positive: need 0 ≤ positive ≤ respondents "
                                    "and respondents > 0")
            self._check_region("region_id", payload.region_id or NATIONAL)
        elif isinstance(payload, evaluation.MisinformationSignalObserved):
            if payload.volume <= 0:
                raise RejectedEvent("volume: must be positive")
            if payload.region_id:
                self._check_region("region_id", payload.region_id)

    def _check_region(self, field: str, region_id: str) -> None:
        try:
            self.units.current_region(region_id)
        except UnknownReference:
            raise RejectedEvent(f"{field}: {region_id!r} is neither a province of the "
                                f"reference data nor {NATIONAL!r}") from None

    async def apply(self, conn: asyncpg.Connection, event: Event) -> None:
        await storage.lock_regulation(conn, event.regulation_id)
        payload = event.payload
        if isinstance(payload, drafting.DraftRegistered):
            await storage.insert_regulation(conn, payload, event.time)
            agency = self.units.name(AGENCY, payload.lead_agency_id, event.time.date())
            await storage.add_to_timeline(
                conn, event.id, event.regulation_id, event.type, event.time,
                f"Đăng ký dự thảo «{payload.title}» — cơ quan chủ trì: {agency}")
            for overtaken in await deferred.take_deferred(conn, event.regulation_id):
                await self.apply(conn, overtaken)
            return
        regulation = await storage.get_regulation(conn, event.regulation_id)
        if regulation is None:
            log.info("deferring %s until %s is registered", event.type, event.regulation_id)
            await deferred.defer(conn, event)
            return
        ledger = Ledger()
        applier = self._appliers.get(type(payload))
        summary = await applier(conn, ledger, regulation, event) if applier else None
        await ledger.flush(conn)
        summary = summary or timeline.describe(payload, event.time)
        if summary:
            await storage.add_to_timeline(conn, event.id, event.regulation_id, event.type,
                                          event.time, summary)

    # Drafting and consultation.

    async def _draft_revised(self, conn, ledger, regulation, event) -> None:
        await storage.revise_regulation(conn, event.regulation_id, title=event.payload.title)

    async def _impact_assessed(self, conn, ledger, regulation, event) -> None:
        payload = event.payload
        await storage.revise_regulation(
            conn, event.regulation_id, impact_level=payload.impact_level,
            affected_province_codes=list(payload.affected_province_codes))

    async def _draft_withdrawn(self, conn, ledger, regulation, event) -> None:
        await storage.withdraw_regulation(conn, event.regulation_id)

    async def _consultation_opened(self, conn, ledger, regulation, event) -> None:
        payload = event.payload
        opens_at = time_of(payload.opens_at) or event.time
        await storage.open_consultation(conn, event.regulation_id, payload.consultation_id,
                                        opens_at, time_of(payload.closes_at))
        opened = await storage.get_regulation(conn, event.regulation_id)
        if opened.consultation_opened_at == regulation.consultation_opened_at:
            return
        # Goes-first tasks not completed by the opening missed it.
        for task in await storage.lock_tasks(conn, "regulation_id = $1 AND goes_first",
                                             event.regulation_id):
            ledger.change(task.ref(), task.shares(regulation.context, self.units),
                          task.shares(opened.context, self.units))

    async def _consultation_extended(self, conn, ledger, regulation, event) -> None:
        await storage.extend_consultation(conn, event.regulation_id,
                                          event.payload.consultation_id,
                                          time_of(event.payload.closes_at))

    async def _comment_received(self, conn, ledger, regulation, event) -> None:
        payload = event.payload
        comment = CommentItem(
            regulation_id=event.regulation_id, comment_id=payload.comment_id,
            province_code=payload.province_code, article_ref=payload.article_ref,
            received_at=time_of(payload.received_at) or event.time, answered_at=None,
            owed=await storage.consultation_closed(conn, event.regulation_id,
                                                   payload.consultation_id))
        if await storage.insert_comment(conn, comment, consultation_id=payload.consultation_id,
                                        campaign_id=payload.campaign_id,
                                        stakeholder_type=payload.stakeholder_type):
            ledger.change(comment.ref(), [], comment.shares(regulation.context, self.units))

    async def _comment_answered(self, conn, ledger, regulation, event) -> None:
        payload = event.payload
        answered_at = time_of(payload.answered_at) or event.time
        comments = await storage.lock_comments(
            conn, "regulation_id = $1 AND answered_at IS NULL AND (comment_id = ANY($2::text[])"
                  " OR ($3 <> '' AND campaign_id = $3))",
            event.regulation_id, list(payload.comment_ids), payload.campaign_id)
        self._rescore_comments(ledger, regulation, comments,
                               [replace(c, answered_at=answered_at) for c in comments])
        await storage.save_comments(conn, [replace(c, answered_at=answered_at) for c in comments])

    async def _consultation_closed(self, conn, ledger, regulation, event) -> None:
        payload = event.payload
        await storage.close_consultation(conn, event.regulation_id, payload.consultation_id,
                                         time_of(payload.closed_at) or event.time)
        comments = await storage.lock_comments(
            conn, "regulation_id = $1 AND consultation_id = $2 AND NOT owed",
            event.regulation_id, payload.consultation_id)
        owed = [replace(c, owed=True) for c in comments]
        self._rescore_comments(ledger, regulation, comments, owed)
        await storage.save_comments(conn, owed)

    def _rescore_comments(self, ledger: Ledger, regulation: Regulation,
                          before: list[CommentItem], after: list[CommentItem]) -> None:
        for old, new in zip(before, after):
            ledger.change(new.ref(), old.shares(regulation.context, self.units),
                          new.shares(regulation.context, self.units))

    # Tasks.

    async def _task_created(self, conn, ledger, regulation, event) -> str:
        task_pb = event.payload.task
        targets = tuple(dict.fromkeys(self.units.current_region(r) for r in task_pb.region_ids))
        targets = targets or (NATIONAL,)
        reached = await storage.reached_regions(conn, event.regulation_id, task_pb.channel)
        due_at = time_of(task_pb.due_at)
        created_at = time_of(task_pb.created_at) or event.time
        planned = regulation.planned_consultation_start
        task = TaskItem(
            task_id=task_pb.task_id, regulation_id=event.regulation_id, kind=task_pb.kind,
            owner_org_id=task_pb.owner_org_id, channel=task_pb.channel, targets=targets,
            unreached=storage.unreached_targets(targets, reached), due_at=due_at,
            status=task_pb.status or task_pb2.TASK_STATUS_CREATED,
            # Material planned and due before the consultation opens is how communication
            # goes first; decided from the task and the draft alone, whatever order the
            # topics are read in.
            goes_first=planned is not None and due_at <= planned and created_at <= planned)
        if not await storage.insert_task(conn, task, trigger_event_id=task_pb.trigger_event_id,
                                         title=task_pb.title, audience=task_pb.audience,
                                         created_at=created_at):
            return None
        ledger.change(task.ref(), [], task.shares(regulation.context, self.units))
        alert = await storage.lock_alert(conn, task_pb.trigger_event_id)
        if alert is not None and alert.rebuttal_task_id is None:
            await self._rescore_alert(conn, ledger, regulation, alert, replace(
                alert, rebuttal_task_id=task.task_id, rebuttal_due_at=due_at))
        return f"Giao nhiệm vụ {task.kind} cho {task.owner_org_id}, hạn {day_of(due_at)}"

    async def _changed_task(self, conn, ledger: Ledger, regulation: Regulation, event: Event,
                            change: Callable[[TaskItem], TaskItem],
                            **saved) -> tuple[TaskItem, str] | None:
        """Applies a change to a stored task and rescores it; returns the changed task and
        the id of the event that triggered it, None for an unknown task."""
        found = await storage.lock_task(conn, event.payload.task_id)
        if found is None:
            log.warning("%s for unknown task %s ignored", event.type, event.payload.task_id)
            return None
        task, trigger_event_id = found
        changed = change(task)
        await storage.save_task(conn, changed, **saved)
        ledger.change(changed.ref(), task.shares(regulation.context, self.units),
                      changed.shares(regulation.context, self.units))
        return changed, trigger_event_id

    async def _task_moved(self, conn, ledger, regulation, event) -> None:
        status = {tasks.TaskAssigned: task_pb2.TASK_STATUS_ASSIGNED,
                  tasks.TaskAccepted: task_pb2.TASK_STATUS_ACCEPTED,
                  tasks.TaskProgressReported: task_pb2.TASK_STATUS_IN_PROGRESS}[
            type(event.payload)]
        await self._changed_task(conn, ledger, regulation, event,
                                 lambda t: t if t.status in _FINAL else replace(t, status=status))

    async def _task_completed(self, conn, ledger, regulation, event) -> str | None:
        payload = event.payload
        completed_at = time_of(payload.completed_at) or event.time

        def complete(task: TaskItem) -> TaskItem:
            return replace(task, status=task_pb2.TASK_STATUS_COMPLETED, completed_at=completed_at,
                           late=payload.late or completed_at > task.due_at,
                           evidence_reach=payload.evidence.reach_count)

        found = await self._changed_task(conn, ledger, regulation, event, complete)
        if found is None:
            return None
        task, trigger_event_id = found
        alert = await storage.lock_alert(conn, trigger_event_id)
        if alert is not None and alert.rebutted_at is None:
            await self._rescore_alert(conn, ledger, regulation, alert,
                                      replace(alert, rebutted_at=completed_at))
        return (f"Hoàn thành nhiệm vụ {task.kind} ({task.owner_org_id})"
                + (", trễ hạn" if task.late else ""))

    async def _task_overdue(self, conn, ledger, regulation, event) -> str | None:
        payload = event.payload
        found = await self._changed_task(
            conn, ledger, regulation, event,
            lambda t: t if t.status in _FINAL else replace(
                t, status=task_pb2.TASK_STATUS_OVERDUE, overdue=True),
            overdue_at=event.time, escalated_to=payload.escalated_to_org_id or None)
        if found is None:
            return None
        task, trigger_event_id = found
        alert = await storage.lock_alert(conn, trigger_event_id)
        if alert is not None and alert.rebutted_at is None and not alert.missed:
            await self._rescore_alert(conn, ledger, regulation, alert, replace(alert, missed=True))
        return (f"Quá hạn: {task.kind} ({task.owner_org_id}), chuyển "
                f"{payload.escalated_to_org_id or 'cấp trên'} đôn đốc")

    async def _task_cancelled(self, conn, ledger, regulation, event) -> str | None:
        found = await self._changed_task(
            conn, ledger, regulation, event,
            lambda t: replace(t, status=task_pb2.TASK_STATUS_CANCELLED))
        if found is None:
            return None
        return f"Hủy nhiệm vụ {found[0].kind}: {event.payload.reason}"

    # Listening: surveys and misinformation.

    async def _survey_recorded(self, conn, ledger, regulation, event) -> str:
        payload = event.payload
        region_id = payload.region_id or NATIONAL
        survey = SurveyItem(
            regulation_id=event.regulation_id, survey_id=payload.survey_id,
            region_id=region_id, stage=payload.stage, respondents=payload.respondents,
            positive=payload.positive,
            recorded_at=time_of(payload.recorded_at) or event.time)
        before = await storage.lock_survey(conn, event.regulation_id, payload.survey_id,
                                           region_id, payload.stage)
        await storage.save_survey(conn, survey)
        ledger.change(survey.ref(),
                      before.shares(regulation.context, self.units) if before else [],
                      survey.shares(regulation.context, self.units))
        share = 100 * payload.positive / payload.respondents
        return (f"Kết quả khảo sát {payload.survey_id}: {labels.funnel_stage(payload.stage)} "
                f"{labels.number(share, 1)}% tại "
                f"{self.units.region_name(self.units.current_region(region_id))}")

    async def _signal_observed(self, conn, ledger, regulation, event) -> str | None:
        payload = event.payload
        detector = await storage.lock_detector(conn, event.regulation_id)
        surge = observe(detector, self.surge_rule, time_of(payload.observed_at) or event.time,
                        payload.volume, payload.claim, payload.region_id, payload.source)
        await storage.save_detector(conn, event.regulation_id, detector)
        if surge is None:
            return None
        now = datetime.now(timezone.utc)
        alert = AlertItem(alert_id=str(uuid.uuid4()), regulation_id=event.regulation_id,
                          claim=surge.claim, region_id=surge.region_id, raised_at=now)
        raised = evaluation.MisinformationAlertRaised(
            regulation_id=event.regulation_id, alert_id=alert.alert_id, claim=surge.claim,
            region_id=surge.region_id, observed_rate=surge.observed_rate,
            baseline_rate=surge.baseline_rate, source=surge.source)
        raised.raised_at.FromDatetime(now)
        raised.window_start.FromDatetime(surge.window_start)
        alert_event = new_event(raised, SOURCE, event_id=alert.alert_id, time=now)
        await enqueue(conn, TOPIC, alert_event)
        await storage.insert_alert(conn, alert, source=surge.source,
                                   observed_rate=surge.observed_rate,
                                   baseline_rate=surge.baseline_rate,
                                   window_start=surge.window_start)
        ledger.change(alert.ref(), [], alert.shares(regulation.context, self.units))
        ALERTS_RAISED.inc()
        log.warning("misinformation surge on %s: %.0f/h against a baseline of %.0f/h",
                    event.regulation_id, surge.observed_rate, surge.baseline_rate)
        await storage.add_to_timeline(
            conn, alert_event.id, event.regulation_id, alert_event.type, now,
            f"Cảnh báo thông tin sai lệch «{surge.claim}»: "
            f"{labels.number(surge.observed_rate)}/giờ, nền {labels.number(surge.baseline_rate)}"
            "/giờ")
        return None

    async def _rescore_alert(self, conn, ledger: Ledger, regulation: Regulation,
                             before: AlertItem, after: AlertItem) -> None:
        await storage.save_alert(conn, after)
        ledger.change(after.ref(), before.shares(regulation.context, self.units),
                      after.shares(regulation.context, self.units))
