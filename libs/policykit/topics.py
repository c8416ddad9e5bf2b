"""The topic declaration (topics.yaml) and its idempotent creation on the broker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from policykit.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

DECLARATION = Path(__file__).with_name("topics.yaml")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int
    cleanup_policy: str
    description: str
    # Who writes and reads the topic: services (the consumer groups) and outside systems.
    produced_by: tuple[str, ...] = ()
    consumed_by: tuple[str, ...] = ()
    # What the record values are (see `carries:` in topics.yaml), as declared.
    carries: tuple[str, ...] = ()

    def configs(self, brokers: int) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(min(self.min_insync_replicas, brokers)),
        }


@dataclass(frozen=True)
class Declaration:
    topics: dict[str, TopicSpec]
    dead_letter_topics: dict[str, str]  # consumer group -> its dead-letter topic
    consumes: dict[str, list[str]]       # consumer group -> topics it reads
    # consumer group -> topic -> Kafka group id, where it is not the group's name
    kafka_group_ids: dict[str, dict[str, str]] = field(default_factory=dict)

    def dead_letter_topic(self, group: str) -> str:
        if group not in self.dead_letter_topics:
            raise KeyError(f"consumer group {group!r} is not declared in {DECLARATION.name}")
        return self.dead_letter_topics[group]

    def kafka_group_id(self, group: str, topic: str) -> str:
        """The Kafka group id under which the consumer group reads the topic."""
        return self.kafka_group_ids.get(group, {}).get(topic, group)


def load(path: Path = DECLARATION) -> Declaration:
    """Reads the declaration; dead-letter topics are derived from the consumer groups."""
    raw = yaml.safe_load(path.read_text("utf-8"))
    defaults = raw["defaults"]

    def spec(entry: dict) -> TopicSpec:
        merged = {**defaults, **entry}
        return TopicSpec(
            name=merged["name"], partitions=int(merged["partitions"]),
            replication_factor=int(merged["replication_factor"]),
            min_insync_replicas=int(merged["min_insync_replicas"]),
            retention_ms=int(merged["retention_ms"]), cleanup_policy=merged["cleanup_policy"],
            description=merged.get("description", ""),
            produced_by=tuple(merged.get("produced_by", ())),
            consumed_by=tuple(merged.get("consumed_by", ())),
            carries=tuple(merged.get("carries", ())))

    topics = {t["name"]: spec(t) for t in raw["topics"]}
    dlq = raw["dead_letter"]
    dead_letter_topics, consumes, kafka_group_ids = {}, {}, {}
    for group in raw["consumer_groups"]:
        unknown = set(group["consumes"]) - topics.keys()
        if unknown:
            raise ValueError(f"consumer group {group['name']} consumes undeclared {sorted(unknown)}")
        group_ids = group.get("kafka_group_ids", {})
        if set(group_ids) - set(group["consumes"]):
            raise ValueError(f"consumer group {group['name']} has Kafka group ids for topics it "
                             f"does not consume: {sorted(set(group_ids) - set(group['consumes']))}")
        name = dlq["name_pattern"].format(group=group["name"])
        dead_letter_topics[group["name"]] = name
        consumes[group["name"]] = list(group["consumes"])
        kafka_group_ids[group["name"]] = dict(group_ids)
        # Whatever the group reads may end up here.
        carried = dict.fromkeys(
            entry for topic in group["consumes"] for entry in topics[topic].carries)
        topics[name] = spec({"name": name, "partitions": dlq["partitions"],
                             "retention_ms": dlq["retention_ms"],
                             "description": f"Dead letters of consumer group {group['name']}.",
                             "produced_by": [group["name"]], "carries": list(carried)})
    return Declaration(topics=topics, dead_letter_topics=dead_letter_topics, consumes=consumes,
                       kafka_group_ids=kafka_group_ids)


def ensure_topics(bootstrap_servers: str, declaration: Declaration | None = None,
                  extra: list[TopicSpec] = (), security: KafkaSecurity = PLAINTEXT) -> list[str]:
    """Creates the declared topics that do not exist yet; returns the names created.
    Replication is capped at the number of brokers in the cluster."""
    declaration = declaration or load()
    wanted = [*declaration.topics.values(), *extra]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="policykit-topics",
                             **security.client_settings())
    try:
        brokers = len(admin.describe_cluster()["brokers"])
        missing = [t for t in wanted if t.name not in set(admin.list_topics())]
        created = []
        for topic in missing:
            replication = min(topic.replication_factor, brokers)
            if replication < topic.replication_factor:
                log.warning("topic %s: replication %d capped at %d broker(s)",
                            topic.name, topic.replication_factor, brokers)
            try:
                admin.create_topics(
                    {topic.name: {"num_partitions": topic.partitions,
                                  "replication_factor": replication,
                                  "configs": topic.configs(brokers)}},
                    wait_for_metadata=True)
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another service created it meanwhile
        return created
    finally:
        admin.close()
