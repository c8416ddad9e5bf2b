"""Prometheus metrics every service exposes over HTTP."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_CONSUMED = Counter(
    "policy_events_consumed_total", "Events decoded and handled, by topic and type.",
    ["topic", "type"])
EVENTS_DUPLICATE = Counter(
    "policy_events_duplicate_total", "Redelivered events absorbed by the inbox.", ["consumer"])
EVENTS_DEAD_LETTERED = Counter(
    "policy_events_dead_lettered_total", "Records sent to a dead-letter topic.",
    ["topic", "dead_letter_topic"])
EVENT_HANDLER_RETRIES = Counter(
    "policy_event_handler_retries_total", "Failed attempts to handle an event, retried.",
    ["topic"])
OUTBOX_PUBLISHED = Counter("policy_outbox_published_total", "Outbox rows published to Kafka.")
OUTBOX_BACKLOG = Gauge("policy_outbox_backlog", "Outbox rows not yet published.")
OUTBOX_OLDEST_AGE = Gauge(
    "policy_outbox_oldest_unsent_seconds", "Age of the oldest unpublished outbox row.")
GRPC_REQUESTS = Counter(
    "policy_grpc_requests_total", "gRPC calls handled, by method and status code.",
    ["method", "code"])
GRPC_LATENCY = Histogram(
    "policy_grpc_request_seconds", "gRPC call latency.", ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
# Sampled ten times a second: work that holds the event loop (a batch planning thousands of
# tasks, a slow callback) delays every call, consumer and relay of the service by as much.
EVENT_LOOP_LAG = Histogram(
    "policy_event_loop_lag_seconds",
    "How late the event loop woke a sampler that was due: time it spent on other work.",
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def serve(port: int) -> int:
    """Serves /metrics on 0.0.0.0:port (0 picks a free port); returns the port bound."""
    server, _thread = start_http_server(port)
    return server.server_port
