"""The playbook: which communication tasks each lifecycle event creates, as versioned data.

A playbook is a YAML file validated at start-up, first against playbook.schema.json, then
against the platform's vocabulary (event types, channels, press agencies, timestamp fields,
title placeholders). Any problem stops start-up with a PlaybookError naming the rule and the
field."""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jsonschema
import yaml
from google.protobuf.descriptor import FieldDescriptor

from policy.common.v1 import common_pb2
from policy.communication.v1 import task_pb2
from policykit.config import ConfigError
from policykit.envelope import EVENT_TYPES
from policykit.reference import ReferenceData, UnknownReference

SCHEMA = json.loads(Path(__file__).with_name("playbook.schema.json").read_text("utf-8"))
DEFAULT_PATH = Path(__file__).parent / "playbooks" / "default.yaml"

# Owners that are a unit of each affected province: their tasks are made one per region.
PROVINCE_OWNERS = frozenset({"province-information-department", "commune-officers",
                             "grassroots-collaborators"})
# Regulation dates a due time may be anchored to, besides the event's own timestamps.
REGULATION_TIMES = frozenset({"planned_consultation_start", "planned_adoption"})
# Placeholders any title may use; per-region tasks may also use {region}, and the event's own
# text fields are available by name.
TITLE_FIELDS = frozenset({"title", "regulation_id", "lead_agency"})
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


class PlaybookError(ConfigError):
    """An invalid playbook; the message names the file, the rule and the field."""


@dataclass(frozen=True)
class Due:
    """When a task is due: `anchor` ("event", a regulation date or an event timestamp field)
    shifted by `offset` (negative for "before")."""
    anchor: str
    offset: timedelta


@dataclass(frozen=True)
class Regions:
    scope: str  # national | affected
    where_any: frozenset[str]
    where_none: frozenset[str]
    per_region: bool


@dataclass(frozen=True)
class TaskTemplate:
    kind: str
    title: str
    channel: int
    owner: str
    press_agency: str | None
    audience: str
    regions: Regions
    due: Due
    priority: int


@dataclass(frozen=True)
class Condition:
    impact_levels: frozenset[int]
    regulation_types: frozenset[int]
    affected_groups_any: frozenset[str]
    region_attributes_any: frozenset[str]


@dataclass(frozen=True)
class Rule:
    id: str
    event: str
    when: Condition
    tasks: tuple[TaskTemplate, ...]


@dataclass(frozen=True)
class Playbook:
    version: str
    rules: tuple[Rule, ...]

    def rules_for(self, event_type: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.event == event_type]


def parse_duration(text: str) -> timedelta:
    days, hours, minutes = (int(part or 0) for part in _DURATION.match(text).groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def _enum_value(enum, prefix: str, name: str) -> int | None:
    full = f"{prefix}_{name}"
    return enum.Value(full) if full in enum.keys() else None


class _Checker:
    """Builds the playbook from validated YAML, collecting semantic errors with their place."""

    def __init__(self, source: str, reference: ReferenceData):
        self.source = source
        self.reference = reference

    def fail(self, rule: str, field: str, message: str) -> None:
        raise PlaybookError(f"{self.source}: rule '{rule}' field '{field}': {message}")

    def enum(self, rule, field, enum, prefix, name) -> int:
        value = _enum_value(enum, prefix, name)
        if value is None:
            names = ", ".join(k.removeprefix(prefix + "_") for k in enum.keys()
                              if not k.endswith("UNSPECIFIED"))
            self.fail(rule, field, f"{name!r} is not one of {names}")
        return value

    def condition(self, rule: str, raw: dict) -> Condition:
        return Condition(
            impact_levels=frozenset(
                self.enum(rule, "when.impact_level", common_pb2.ImpactLevel, "IMPACT_LEVEL", n)
                for n in raw.get("impact_level", ())),
            regulation_types=frozenset(
                self.enum(rule, "when.regulation_type", common_pb2.RegulationType,
                          "REGULATION_TYPE", n) for n in raw.get("regulation_type", ())),
            affected_groups_any=frozenset(raw.get("affected_groups_any", ())),
            region_attributes_any=frozenset(raw.get("region_attributes_any", ())))

    def task(self, rule: str, event_type: str, index: int, raw: dict) -> TaskTemplate:
        where = f"tasks[{index}]"
        regions = raw["regions"]
        per_region = regions.get("per_region", False)
        if raw["owner"] in PROVINCE_OWNERS and not (regions["scope"] == "affected" and per_region):
            self.fail(rule, f"{where}.regions", f"owner {raw['owner']} is a unit of each "
                      "province: use scope 'affected' with per_region: true")
        if per_region and regions["scope"] != "affected":
            self.fail(rule, f"{where}.regions.per_region", "needs scope 'affected'")
        press_agency = raw.get("press_agency")
        if (raw["owner"] == "press-agency") != (press_agency is not None):
            self.fail(rule, f"{where}.press_agency",
                      "is required with owner press-agency, and only then")
        if press_agency is not None:
            try:
                agency = self.reference.agency(press_agency)
            except UnknownReference:
                agency = None
            if agency is None or agency.kind != "press-agency":
                self.fail(rule, f"{where}.press_agency", f"{press_agency!r} is not a press agency "
                          "of the reference data")
        due = raw["due"]
        anchor = due.get("after") or due.get("before") or "event"
        payload = EVENT_TYPES[event_type].DESCRIPTOR
        times = {f.name for f in payload.fields if f.type == FieldDescriptor.TYPE_MESSAGE
                 and f.message_type.full_name == "google.protobuf.Timestamp"}
        if anchor not in {"event"} | REGULATION_TIMES | times:
            self.fail(rule, f"{where}.due", f"{anchor!r} is not 'event', a regulation date "
                      f"({', '.join(sorted(REGULATION_TIMES))}) or a timestamp of {event_type}")
        offset = parse_duration(due["offset"])
        texts = {f.name for f in payload.fields if f.type == FieldDescriptor.TYPE_STRING
                 and not f.is_repeated}
        allowed = TITLE_FIELDS | texts | ({"region"} if per_region else set())
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(raw["title"]) if name}
        except ValueError as error:
            self.fail(rule, f"{where}.title", str(error))
        if used - allowed:
            self.fail(rule, f"{where}.title", f"unknown placeholder(s) {sorted(used - allowed)}; "
                      f"allowed: {sorted(allowed)}")
        return TaskTemplate(
            kind=raw["kind"], title=raw["title"],
            channel=self.enum(rule, f"{where}.channel", common_pb2.Channel, "CHANNEL",
                              raw["channel"]),
            owner=raw["owner"], press_agency=press_agency, audience=raw["audience"],
            regions=Regions(regions["scope"], frozenset(regions.get("where_any", ())),
                            frozenset(regions.get("where_none", ())), per_region),
            due=Due(anchor, -offset if "before" in due else offset),
            priority=self.enum(rule, f"{where}.priority", task_pb2.TaskPriority,
                               "TASK_PRIORITY", raw["priority"]))

    def rule(self, raw: dict) -> Rule:
        if raw["event"] not in EVENT_TYPES:
            self.fail(raw["id"], "event", f"{raw['event']!r} is not a lifecycle event type")
        return Rule(id=raw["id"], event=raw["event"],
                    when=self.condition(raw["id"], raw.get("when", {})),
                    tasks=tuple(self.task(raw["id"], raw["event"], i, t)
                                for i, t in enumerate(raw["tasks"])))


def _schema_error(source: str, document: dict, error: jsonschema.ValidationError) -> PlaybookError:
    path = list(error.absolute_path)
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rule = document["rules"][path[1]]
        rule_id = rule.get("id", f"#{path[1] + 1}") if isinstance(rule, dict) else f"#{path[1] + 1}"
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[2:]).lstrip(".")
        return PlaybookError(f"{source}: rule '{rule_id}' field '{field or '(rule)'}': "
                             f"{error.message}")
    where = ".".join(str(p) for p in path) or "(top level)"
    return PlaybookError(f"{source}: field '{where}': {error.message}")


def load(path: Path, reference: ReferenceData) -> Playbook:
    """Reads and validates a playbook file; raises PlaybookError on any problem."""
    source = path.name
    try:
        document = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise PlaybookError(f"{source}: cannot be read as YAML: {error}") from None
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise _schema_error(source, document, errors[0])
    checker = _Checker(f"{source} v{document['version']}", reference)
    rules = tuple(checker.rule(raw) for raw in document["rules"])
    seen = set()
    for rule in rules:
        if rule.id in seen:
            checker.fail(rule.id, "id", "is used by another rule")
        seen.add(rule.id)
    return Playbook(version=document["version"], rules=rules)


def main(argv: list[str] | None = None) -> int:
    """`python -m services.communication.playbook FILE…`: validates playbooks before they are
    deployed; exits 1 naming the rule and field of the first problem in each bad file."""
    import argparse

    from policykit.reference import default

    parser = argparse.ArgumentParser(prog="python -m services.communication.playbook",
                                     description=main.__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    status = 0
    for path in parser.parse_args(argv).files:
        try:
            playbook = load(path, default())
            print(f"{path}: version {playbook.version}, {len(playbook.rules)} rules, valid")
        except PlaybookError as error:
            print(error)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
