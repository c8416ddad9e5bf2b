"""JSON schemas for validating the manifests offline with kubeconform.

`crds`: turns the operators' CustomResourceDefinitions into kubeconform's schema layout,
`crds/{kind}-{group}-{version}.json`, committed beside this file. The CRDs come from package
registries only — Strimzi's are generated from its API classes on Maven Central (see
strimzi/pom.xml); CloudNativePG's, prometheus-operator's and KEDA's are files in their Go modules
on the Go module proxy — so a version bump is: change SOURCES, run this, commit the result.

`core`: writes the Kubernetes schemas shipped by the PyPI package kubernetes-validate into
kubeconform's layout (`v{version}-standalone-strict/{kind}-{group}-{version}.json`) under a
cache folder; validate.sh does this on every run, so they are not committed.

Run with a Python that has PyYAML (and kubernetes-validate, for `core`)."""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CRD_SCHEMAS = HERE / "crds"


@dataclass(frozen=True)
class GoModuleCrds:
    """CRD files inside a Go module, fetched with `go mod download`."""

    module: str
    version: str
    files: tuple[str, ...]

    def fetch(self, workdir: Path) -> list[Path]:
        info = json.loads(subprocess.run(
            ["go", "mod", "download", "-json", f"{self.module}@{self.version}"],
            check=True, capture_output=True, text=True, cwd=workdir).stdout)
        return [Path(info["Dir"]) / name for name in self.files]


@dataclass(frozen=True)
class StrimziCrds:
    """Strimzi's CRDs, generated from its API classes with its own generator and the
    arguments of Strimzi's build (api/pom.xml). Only v1beta2 is generated: the older versions
    KafkaTopic and KafkaUser still serve are deprecated, so a manifest using them fails."""

    pom: Path
    classes: tuple[str, ...]

    def fetch(self, workdir: Path) -> list[Path]:
        classpath_file = workdir / "strimzi.classpath"
        subprocess.run(["mvn", "-q", "-f", str(self.pom), "dependency:build-classpath",
                        f"-Dmdep.outputFile={classpath_file}"], check=True)
        classpath = classpath_file.read_text().strip()
        written = []
        for java_class in self.classes:
            target = workdir / f"{java_class.rsplit('.', 1)[1].lower()}.yaml"
            subprocess.run(
                ["java", "-cp", classpath, "io.strimzi.crdgenerator.CrdGenerator",
                 "--label", "app:strimzi", "--label", "strimzi.io/crd-install:true",
                 "--target-kube", "1.16+", "--crd-api-version", "v1",
                 "--api-versions", "v1beta2", "--storage-version", "v1beta2", "--yaml",
                 f"{java_class}={target}"], check=True)
            written.append(target)
        return written


# Only the kinds the manifests (and the runbook's commands) use: a manifest of any other
# custom kind fails validation with "could not find schema" until it is added here.
SOURCES = [
    StrimziCrds(HERE / "strimzi" / "pom.xml", (
        "io.strimzi.api.kafka.model.kafka.Kafka",
        "io.strimzi.api.kafka.model.nodepool.KafkaNodePool",
        "io.strimzi.api.kafka.model.topic.KafkaTopic",
        "io.strimzi.api.kafka.model.user.KafkaUser",
    )),
    GoModuleCrds("github.com/cloudnative-pg/cloudnative-pg", "v1.29.0", (
        "config/crd/bases/postgresql.cnpg.io_clusters.yaml",
        "config/crd/bases/postgresql.cnpg.io_backups.yaml",
        "config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml",
    )),
    GoModuleCrds("github.com/prometheus-operator/prometheus-operator", "v0.85.0", (
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    )),
    GoModuleCrds("github.com/kedacore/keda/v2", "v2.21.0", (
        "config/crd/bases/keda.sh_scaledobjects.yaml",
        "config/crd/bases/keda.sh_triggerauthentications.yaml",
    )),
]


def strict(schema: dict) -> dict:
    """Returns the OpenAPI v3 schema as a JSON schema that rejects unknown fields, as the API
    server does for custom resources: objects with declared properties get
    `additionalProperties: false` unless they preserve unknown fields; `nullable` becomes a
    null type; the int-or-string markers become a choice of the two types."""
    schema = copy.deepcopy(schema)

    def visit(node):
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
            node.pop("format", None)
            node.pop("type", None)
            node.pop("anyOf", None)
            node["oneOf"] = [{"type": "string"}, {"type": "integer"}]
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for key, value in node.items():
            # `properties` maps field names to schemas: visit the schemas, not the map itself,
            # so that a field called "properties" is not mistaken for a keyword.
            if key == "properties" and isinstance(value, dict):
                for field_schema in value.values():
                    visit(field_schema)
            else:
                visit(value)

    visit(schema)
    return schema


def crd_schemas(crd_file: Path) -> dict[str, dict]:
    """Maps kubeconform file names to the strict schema of each version the CRD serves."""
    found = {}
    for document in yaml.safe_load_all(crd_file.read_text("utf-8")):
        if not document or document.get("kind") != "CustomResourceDefinition":
            continue
        spec = document["spec"]
        for version in spec["versions"]:
            if not version.get("served", True) or "schema" not in version:
                continue
            name = f"{spec['names']['kind']}-{spec['group']}-{version['name']}".lower()
            found[f"{name}.json"] = strict(version["schema"]["openAPIV3Schema"])
    return found


def generate_crds() -> None:
    with tempfile.TemporaryDirectory() as work:
        workdir = Path(work)
        schemas: dict[str, dict] = {}
        for source in SOURCES:
            for crd_file in source.fetch(workdir):
                schemas.update(crd_schemas(crd_file))
    shutil.rmtree(CRD_SCHEMAS, ignore_errors=True)
    CRD_SCHEMAS.mkdir()
    for name, schema in sorted(schemas.items()):
        (CRD_SCHEMAS / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"wrote {(CRD_SCHEMAS / name).relative_to(HERE.parent.parent)}")


def generate_core(kubernetes_version: str, out: Path) -> Path:
    """Writes kubernetes-validate's strict schemas for the version in kubeconform's layout.
    Its schemas share one `_definitions.json` by absolute reference (`/api/_definitions.json`)
    under an `$id` on kubernetes.io; relative references and no `$id` let kubeconform load the
    definitions from the file beside each schema instead of from the network."""
    import kubernetes_validate

    source = (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
              / f"v{kubernetes_version}-local-strict")
    if not source.is_dir():
        raise SystemExit(f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version}")
    target = out / f"v{kubernetes_version}-standalone-strict"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for schema_file in source.glob("*.json"):
        text = schema_file.read_text("utf-8").replace('"/api/_definitions.json#',
                                                       '"_definitions.json#')
        schema = json.loads(text)
        schema.pop("$id", None)
        (target / schema_file.name).write_text(json.dumps(schema))
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="k8s/schemas/generate.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("crds", help="regenerate the committed CRD schemas (needs mvn, java, go)")
    core = commands.add_parser("core", help="write the Kubernetes schemas into a cache folder")
    core.add_argument("--kubernetes-version", required=True, help="e.g. 1.33.0")
    core.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "crds":
        generate_crds()
    else:
        print(generate_core(args.kubernetes_version, args.out))


if __name__ == "__main__":
    sys.exit(main())
