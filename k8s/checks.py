"""Turns monitoring manifests into files promtool can check; used by k8s/validate.sh.

`rules BUILD OUT`: writes the groups of each PrometheusRule in the built manifests BUILD to
OUT/<name>.rules.yaml, the plain rule files `promtool check rules` and `promtool test rules`
read.

`dashboard DASHBOARD OUT`: writes every query of a Grafana dashboard JSON as a recording rule
to OUT, so that `promtool check rules` parses them; Grafana's variables are replaced by values
of the same kind first ($__rate_interval by a duration, a $variable inside a label matcher by
a regex that matches anything)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

# Grafana's built-in interval variables: each becomes a duration.
INTERVALS = re.compile(r"\$\{?(__rate_interval|__interval|__range)\b\}?")
VARIABLE = re.compile(r"\$\{?\w+\}?")


def write_rule_files(build: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for document in yaml.safe_load_all(build.read_text("utf-8")):
        if document and document.get("kind") == "PrometheusRule":
            path = out / f"{document['metadata']['name']}.rules.yaml"
            path.write_text(yaml.safe_dump(document["spec"], sort_keys=False, allow_unicode=True))
            written.append(path)
    if not written:
        raise SystemExit(f"{build} has no PrometheusRule")
    return written


def dashboard_queries(dashboard: Path) -> list[tuple[str, str]]:
    """Returns (panel title, query) for every target of every panel, rows included."""
    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", ()))

    data = json.loads(dashboard.read_text("utf-8"))
    return [(panel.get("title", "?"), target["expr"]) for panel in panels(data["panels"])
            for target in panel.get("targets", ()) if target.get("expr")]


def as_recording_rules(queries: list[tuple[str, str]]) -> dict:
    rules = []
    for number, (title, query) in enumerate(queries, 1):
        concrete = VARIABLE.sub(".+", INTERVALS.sub("5m", query))
        rules.append({"record": f"dashboard:query_{number}", "expr": concrete,
                      "labels": {"panel": title}})
    return {"groups": [{"name": "dashboard-queries", "rules": rules}]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8s/checks.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rules = commands.add_parser("rules")
    rules.add_argument("build", type=Path)
    rules.add_argument("out", type=Path)
    dashboard = commands.add_parser("dashboard")
    dashboard.add_argument("dashboard", type=Path)
    dashboard.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "rules":
        for path in write_rule_files(args.build, args.out):
            print(path)
    else:
        queries = dashboard_queries(args.dashboard)
        args.out.write_text(yaml.safe_dump(as_recording_rules(queries), sort_keys=False,
                                           allow_unicode=True))
        print(f"{args.out}: {len(queries)} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
