"""k8s/checks.py: the files it hands promtool carry the alerts and the dashboard's queries,
with Grafana's variables made concrete."""

from __future__ import annotations

from pathlib import Path

import yaml

from k8s import checks

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "k8s" / "components" / "monitoring" / "dashboards" / "policy-platform.json"
RULES = REPO / "k8s" / "components" / "monitoring" / "prometheusrule.yaml"


def test_prometheus_rules_become_plain_rule_files(tmp_path):
    build = tmp_path / "build.yaml"
    build.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}},
        yaml.safe_load(RULES.read_text("utf-8"))]))

    [written] = checks.write_rule_files(build, tmp_path / "rules")

    assert written.name == "policy-platform.rules.yaml"
    groups = yaml.safe_load(written.read_text("utf-8"))["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    assert {"PolicyConsumerLagHigh", "PolicyOutboxStuck", "PolicyPublicationTimersLate"} <= alerts


def test_every_dashboard_query_becomes_a_concrete_recording_rule():
    queries = checks.dashboard_queries(DASHBOARD)
    rules = checks.as_recording_rules(queries)["groups"][0]["rules"]

    assert len(rules) == len(queries) > 10
    for rule in rules:
        assert "$" not in rule["expr"], rule
    lag = next(r for r in rules if "kafka_consumergroup_lag" in r["expr"])
    assert lag["labels"]["panel"] == "Consumer lag by group"


def test_variables_are_replaced_by_values_of_their_kind():
    [rule] = checks.as_recording_rules([(
        "p", 'rate(x{namespace=~"$namespace"}[$__rate_interval]) + rate(y[${__interval}])')])[
        "groups"][0]["rules"]

    assert rule["expr"] == 'rate(x{namespace=~".+"}[5m]) + rate(y[5m])'
