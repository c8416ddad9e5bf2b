"""Writes docs/asyncapi.yaml, the AsyncAPI 3.0 description of every Kafka topic, from
libs/policykit/topics.yaml and the compiled protobuf descriptors (gen/python, `make protos`),
or checks that the committed document still matches them (`--check`, which CI runs).

Per topic, dead-letter topics included: its address and Kafka configuration, the record key
(the regulation id), the headers (the CloudEvents binary-mode envelope of policykit.envelope;
on dead-letter topics also policykit.kafka_io's dlq_* headers), the messages it carries (the
`carries:` of topics.yaml), who sends them and who receives them, under which Kafka group id.

Payloads are JSON Schemas generated from the descriptors, with `contentType:
application/protobuf` and `x-protobuf-message` naming the type, rather than
`schemaFormat: application/vnd.google.protobuf;version=3` with the .proto source: @asyncapi/cli
6.2.0 (protobuf-schema-parser 3.9.0) rejects our events.proto files as payloads. It wants one
root message per schema ("Found more than one root proto messages: RegulationPublished,
RegulationEffective, …" unless one is marked @RootNode) and resolves no imports besides
google/protobuf/* and google/type/* ("Imports are currently not implemented. Can not load:
policy/common/v1/…"); every events.proto but publication's imports policy/common/v1/common.proto.
The default output even hides why ("Errors", nothing else; --diagnostics-format json shows
it). JSON Schemas also let the CLI check every payload schema and need no protobuf tooling.

Run it with the project's virtualenv after changing topics.yaml or an events.proto:
`.venv/bin/python deploy/tools/asyncapi.py`."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# Runs as a plain script too, without the PYTHONPATH the Makefile exports.
for path in (REPO / "libs", REPO / "gen" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor  # noqa: E402

from policykit import envelope, kafka_io  # noqa: E402
from policykit import topics as declared  # noqa: E402

DOCUMENT = REPO / "docs" / "asyncapi.yaml"
KAFKA_BINDING = "0.5.0"
TIMESTAMP = "google.protobuf.Timestamp"

HEADERS = "CloudEventHeaders"
DEAD_LETTER_HEADERS = "DeadLetterHeaders"
REGULATION_ID = "RegulationId"
UNDECODABLE = "UndecodableRecord"
DEAD_LETTER_SUFFIX = ".dead-letter"

DESCRIPTION = """\
The platform's Kafka topics, generated from `libs/policykit/topics.yaml` and `protos/` by
`deploy/tools/asyncapi.py`; do not edit by hand.

Lifecycle events follow the CloudEvents 1.0 Kafka binding in binary mode: the attributes are
`ce_*` headers, `ce_type` is the payload's full protobuf name, the value is the binary
protobuf (`contentType: application/protobuf`, type in `x-protobuf-message`, source in
`x-protobuf-file`), and the key is the regulation id, so one regulation's events stay in order.
Payload schemas describe each message in protobuf's JSON mapping with the field names of the
`.proto` (64-bit integers as decimal strings, enums by name, timestamps as RFC 3339); every
field is optional, as in proto3, and later versions may add fields.

Operations say which application sends to or receives from each topic: the platform's services
(tag `service`) and outside systems (tag `external-system`). A receive operation's Kafka binding
gives the group id it reads under; an outside system's group ids start with its name.
"""


def ref(*path: str) -> dict:
    return {"$ref": "#/" + "/".join(path)}


def carried_types(entry: str) -> list[str]:
    """The event types one `carries:` entry names (a JSON Schema path stands for itself)."""
    if entry.endswith(".schema.json"):
        return [entry]
    if entry.endswith(".*"):
        package = entry[:-1]
        names = [name for name in envelope.EVENT_TYPES if name.rpartition(".")[0] + "." == package]
        if not names:
            raise SystemExit(f"topics.yaml: {entry!r} matches no event type of an events.proto")
        return names
    if entry not in envelope.EVENT_TYPES:
        raise SystemExit(f"topics.yaml: {entry!r} is not a lifecycle event type "
                         "(a message with regulation_id in a policy.<stage>.v1 events.proto)")
    return [entry]


def carried(spec: declared.TopicSpec) -> list[str]:
    if not spec.carries:
        raise SystemExit(f"topics.yaml: topic {spec.name} says nothing about what it carries")
    return list(dict.fromkeys(name for entry in spec.carries for name in carried_types(entry)))


class Schemas:
    """Collects JSON Schemas for protobuf messages and enums, and those they use, by full name."""

    def __init__(self):
        self.schemas: dict[str, dict] = {}

    def message(self, descriptor: Descriptor) -> dict:
        if descriptor.full_name not in self.schemas:
            self.schemas[descriptor.full_name] = {}  # placeholder: recursive types end here
            self.schemas[descriptor.full_name] = {
                "type": "object",
                "title": descriptor.name,
                "properties": {field.name: self.field(field) for field in descriptor.fields},
            }
        return ref("components", "schemas", descriptor.full_name)

    def enum(self, descriptor: EnumDescriptor) -> dict:
        self.schemas.setdefault(descriptor.full_name, {
            "type": "string", "title": descriptor.name,
            "enum": [value.name for value in descriptor.values]})
        return ref("components", "schemas", descriptor.full_name)

    def field(self, field: FieldDescriptor) -> dict:
        schema = self.single(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def single(self, field: FieldDescriptor) -> dict:
        cpp = field.cpp_type
        if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
            message = field.message_type
            if message.GetOptions().map_entry:
                raise SystemExit(f"{field.full_name}: map fields are not mapped to JSON Schema yet")
            if message.full_name == TIMESTAMP:
                return {"type": "string", "format": "date-time"}
            if message.full_name.startswith("google."):
                raise SystemExit(f"{field.full_name}: {message.full_name} is not mapped yet")
            return self.message(message)
        if cpp == FieldDescriptor.CPPTYPE_ENUM:
            return self.enum(field.enum_type)
        if field.type == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        return {
            FieldDescriptor.CPPTYPE_STRING: {"type": "string"},
            FieldDescriptor.CPPTYPE_BOOL: {"type": "boolean"},
            FieldDescriptor.CPPTYPE_INT32: {"type": "integer", "format": "int32"},
            FieldDescriptor.CPPTYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
            # The JSON mapping writes 64-bit integers as strings (JavaScript's numbers are doubles).
            FieldDescriptor.CPPTYPE_INT64: {"type": "string", "format": "int64"},
            FieldDescriptor.CPPTYPE_UINT64: {"type": "string", "format": "uint64"},
            FieldDescriptor.CPPTYPE_DOUBLE: {"type": "number"},
            FieldDescriptor.CPPTYPE_FLOAT: {"type": "number"},
        }[cpp]


def header_schemas() -> dict[str, dict]:
    text = {"type": "string"}
    time = {"type": "string", "format": "date-time"}
    return {
        REGULATION_ID: {
            "type": "string", "minLength": 1,
            "description": "The regulation id: the record key, the payload's regulation_id and "
                           "ce_subject."},
        HEADERS: {
            "type": "object",
            "description": "CloudEvents 1.0 attributes, Kafka protocol binding, binary mode; "
                           "values are UTF-8 text.",
            "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time",
                         "content-type"],
            "properties": {
                "ce_specversion": {"type": "string", "const": envelope.SPECVERSION},
                "ce_id": {**text, "description": "Unique per event; consumers de-duplicate by it."},
                "ce_source": {**text, "description": "The producer, e.g. policy/drafting."},
                "ce_type": {**text, "description": "The payload's full protobuf message name."},
                "ce_time": {**time, "description": "When the event happened (RFC 3339)."},
                "ce_subject": {**text, "description": "The regulation id; taken from the payload "
                                                      "when absent."},
                "content-type": {"type": "string", "const": envelope.CONTENT_TYPE},
            },
        },
        DEAD_LETTER_HEADERS: {
            "type": "object",
            "description": "Added to the record's own headers when it is dead-lettered.",
            "required": [kafka_io.DLQ_REASON, kafka_io.DLQ_SOURCE_TOPIC,
                         kafka_io.DLQ_SOURCE_PARTITION, kafka_io.DLQ_SOURCE_OFFSET,
                         kafka_io.DLQ_CONSUMER_GROUP, kafka_io.DLQ_FAILED_AT],
            "properties": {
                kafka_io.DLQ_REASON: {**text, "description": "Why: the field or state that "
                                      "was rejected, or the handler's last error."},
                kafka_io.DLQ_SOURCE_TOPIC: {**text, "description": "Where the record came from."},
                kafka_io.DLQ_SOURCE_PARTITION: {"type": "string", "pattern": "^[0-9]+$"},
                kafka_io.DLQ_SOURCE_OFFSET: {"type": "string", "pattern": "^[0-9]+$"},
                kafka_io.DLQ_CONSUMER_GROUP: text,
                kafka_io.DLQ_FAILED_AT: time,
            },
        },
    }


def key_binding() -> dict:
    return {"kafka": {"key": ref("components", "schemas", REGULATION_ID),
                      "bindingVersion": KAFKA_BINDING}}


def event_message(name: str, schemas: Schemas, dead_letter: bool = False) -> dict:
    descriptor = envelope.EVENT_TYPES[name].DESCRIPTOR
    headers = [ref("components", "schemas", HEADERS),
               {"properties": {"ce_type": {"const": name}}}]
    if dead_letter:
        headers.append(ref("components", "schemas", DEAD_LETTER_HEADERS))
    return {
        "name": descriptor.name,
        "title": descriptor.name + (" (dead letter)" if dead_letter else ""),
        "contentType": envelope.CONTENT_TYPE,
        "x-protobuf-message": name,
        "x-protobuf-file": f"protos/{descriptor.file.name}",
        "headers": {"allOf": headers},
        "payload": schemas.message(descriptor),
        "bindings": key_binding(),
    }


def json_message(path: str) -> dict:
    schema = json.loads((REPO / path).read_text("utf-8"))
    return {
        "name": message_id(path),
        "title": schema["title"],
        "contentType": "application/json",
        "headers": {"type": "object", "required": ["content-type"], "properties": {
            "content-type": {"type": "string", "const": "application/json"}}},
        # Referenced, not copied: the schema file stays the one definition of the format.
        "payload": {"$ref": os.path.relpath(REPO / path, DOCUMENT.parent)},
        "bindings": key_binding(),
    }


def message_id(name: str) -> str:
    """An event's full name, or a JSON Schema file's name without .schema.json."""
    return Path(name).name.removesuffix(".schema.json")


def channel(spec: declared.TopicSpec, description: str, messages: dict[str, dict]) -> dict:
    return {
        "address": spec.name,
        "description": description,
        "messages": messages,
        "bindings": {"kafka": {
            "partitions": spec.partitions,
            "replicas": spec.replication_factor,
            "topicConfiguration": {
                "cleanup.policy": [spec.cleanup_policy],
                "retention.ms": spec.retention_ms,
                "min.insync.replicas": spec.min_insync_replicas,
            },
            "bindingVersion": KAFKA_BINDING,
        }},
    }


def operation(action: str, app: str, spec: declared.TopicSpec, message_ids: list[str],
              declaration: declared.Declaration) -> dict:
    service = app in declaration.consumes
    verb = "sends to" if action == "send" else "receives from"
    result = {
        "action": action,
        "channel": ref("channels", spec.name),
        "title": f"{app} {verb} {spec.name}",
        "tags": [{"name": "service" if service else "external-system"}],
        "messages": [ref("channels", spec.name, "messages", m) for m in message_ids],
    }
    if action == "receive":
        group_id = ({"type": "string", "const": declaration.kafka_group_id(app, spec.name)}
                    if service else {"type": "string", "pattern": f"^{app}"})
        result["bindings"] = {"kafka": {"groupId": group_id, "bindingVersion": KAFKA_BINDING}}
    return result


def document(declaration: declared.Declaration) -> dict:
    schemas = Schemas()
    components_messages: dict[str, dict] = {}
    channels: dict[str, dict] = {}
    operations: dict[str, dict] = {}
    dead_letter_groups = {topic: group for group, topic in declaration.dead_letter_topics.items()}

    for spec in declaration.topics.values():
        group = dead_letter_groups.get(spec.name)
        description = spec.description
        messages = {}
        for name in carried(spec):
            # A dead letter keeps the record's own key, value and headers and adds the dlq_* ones.
            component = f"{message_id(name)}{DEAD_LETTER_SUFFIX if group else ''}"
            if component not in components_messages:
                components_messages[component] = (
                    json_message(name) if name.endswith(".schema.json")
                    else event_message(name, schemas, dead_letter=bool(group)))
            messages[message_id(name)] = ref("components", "messages", component)
        if group:
            components_messages.setdefault(UNDECODABLE, {
                "name": UNDECODABLE,
                "title": "A record the group could not decode, as it came",
                "headers": ref("components", "schemas", DEAD_LETTER_HEADERS),
                "payload": {"type": "string", "format": "binary"},
            })
            messages[UNDECODABLE] = ref("components", "messages", UNDECODABLE)
            description = (f"Dead letters of consumer group {group}: records it could not decode, "
                           "rejected, or failed to handle after retries. Operators replay them to "
                           f"the topic named in {kafka_io.DLQ_SOURCE_TOPIC}.")
        channels[spec.name] = channel(spec, description, messages)
        for app in spec.produced_by:
            operations[f"{app}.send.{spec.name}"] = operation(
                "send", app, spec, list(messages), declaration)
        for app in spec.consumed_by:
            operations[f"{app}.receive.{spec.name}"] = operation(
                "receive", app, spec, list(messages), declaration)

    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Policy lifecycle platform: Kafka topics", "version": "1.0.0",
                 "description": DESCRIPTION},
        "defaultContentType": envelope.CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {**header_schemas(), **schemas.schemas},
                       "messages": components_messages},
    }


class Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:
        return True  # spelled out in full: readers and the CLI need no anchors

    def represent_str(self, data: str) -> yaml.ScalarNode:
        # Multi-line text as a literal block, which also keeps its mapping in block style.
        return self.represent_scalar("tag:yaml.org,2002:str", data,
                                     style="|" if "\n" in data else None)


Dumper.add_representer(str, Dumper.represent_str)


def render(doc: dict) -> str:
    body = yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=None)  # leaf maps and lists on one line
    return ("# Generated by deploy/tools/asyncapi.py from libs/policykit/topics.yaml and protos/\n"
            "# (via gen/python): edit those, then run\n"
            "# `.venv/bin/python deploy/tools/asyncapi.py`. CI fails when this file drifts.\n"
            + body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/tools/asyncapi.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help=f"write nothing; exit 1 if {DOCUMENT.relative_to(REPO)} differs "
                             "from what its sources give")
    args = parser.parse_args(argv)
    wanted = render(document(declared.load()))
    current = DOCUMENT.read_text("utf-8") if DOCUMENT.exists() else ""
    name = DOCUMENT.relative_to(REPO)
    if current == wanted:
        return 0
    if args.check:
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(keepends=True), wanted.splitlines(keepends=True),
            f"{name} (committed)", f"{name} (generated)"))
        print(f"\n{name} drifted from topics.yaml and the protos; run "
              "`.venv/bin/python deploy/tools/asyncapi.py` and commit the result.",
              file=sys.stderr)
        return 1
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(wanted, "utf-8")
    print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
