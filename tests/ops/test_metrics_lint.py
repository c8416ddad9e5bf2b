"""Each service's live /metrics passes `promtool check metrics`, and every platform metric the
alerts and the Grafana dashboard (k8s/components/monitoring) query is one a service exposes.

Every service with a `__main__.py` is started once, against the session's broker and
database, and scraped after it reports SERVING. promtool comes from Debian's `prometheus`
package; k8s/validate.sh installs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support import REPO, start_service

SERVICES = sorted(path.parent.name for path in (REPO / "services").glob("*/__main__.py"))
# What a service needs beyond the shared configuration to start at all.
EXTRA_ENV = {
    "consultation": {"CONSULTATION_PSEUDONYM_KEY": "metrics-lint-test-pseudonym-key-0123456789"},
}
MONITORING = REPO / "k8s" / "components" / "monitoring"
# Histogram and counter series carry these suffixes; the family is the name without them.
SERIES_SUFFIX = re.compile(r"_(bucket|count|sum|created)$")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: `apt-get install prometheus` (Debian) provides "
                    "/usr/bin/promtool; k8s/validate.sh installs it when run as root")
    return path


@pytest.fixture(scope="module")
def exposition(platform_topics, database_url, tmp_path_factory) -> dict[str, str]:
    """Maps each service to the text of its /metrics."""
    texts = {}
    for name in SERVICES:
        service = start_service(f"services.{name}", tmp_path_factory.mktemp(f"metrics-{name}"),
                                {"KAFKA_BOOTSTRAP_SERVERS": platform_topics,
                                 "DATABASE_URL": database_url, **EXTRA_ENV.get(name, {})})
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics",
                                        timeout=10) as reply:
                texts[name] = reply.read().decode("utf-8")
        finally:
            assert service.terminate() == 0, service.log.read_text()
    return texts


def families(text: str) -> set[str]:
    """The metric families an exposition declares (its `# TYPE` lines)."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def queried_metrics() -> set[str]:
    """The platform's own metric families the alerts and the dashboard query."""
    rules = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text("utf-8"))
    queries = [rule["expr"] for group in rules["spec"]["groups"] for rule in group["rules"]]
    dashboard = json.loads((MONITORING / "dashboards" / "policy-platform.json").read_text("utf-8"))
    queries += [target["expr"] for panel in dashboard["panels"]
                for target in panel.get("targets", ())]
    names = {name for query in queries for name in re.findall(r"\bpolicy_[a-z0-9_]+", query)}
    return {SERIES_SUFFIX.sub("", name) for name in names}


def owner(metric: str) -> str | None:
    """The service whose own code defines the metric (policy_<service>_…), or None for
    policykit's, which every service exposes."""
    return next((folder.name for folder in (REPO / "services").iterdir()
                 if metric.startswith(f"policy_{folder.name}_")), None)


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_pass_promtool(service, exposition, promtool):
    result = subprocess.run([promtool, "check", "metrics"], input=exposition[service],
                            capture_output=True, text=True)
    assert result.returncode == 0, (
        f"promtool check metrics on {service}'s /metrics:\n{result.stdout}{result.stderr}")


def test_alerts_and_dashboard_query_metrics_the_services_expose(exposition):
    missing = []
    for metric in sorted(queried_metrics()):
        service = owner(metric)
        if service is not None and service not in exposition:
            missing.append(f"{metric}: services/{service} has no __main__.py to start")
            continue
        for name in [service] if service else SERVICES:
            if metric not in families(exposition[name]):
                missing.append(f"{metric}: not exposed by {name}")
    assert not missing, ("queried by k8s/components/monitoring but not exposed:\n"
                         + "\n".join(missing))
