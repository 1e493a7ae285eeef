"""The Kubernetes manifests a site applies: every overlay renders, every object is valid for Kubernetes and for the
operator that owns it, every command is one the image has, nothing runs as root or writes its root filesystem,
no secret is in the repository, and `govshare migrate` (the Job before each rollout) migrates every schema."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from govshare_common.settings import Settings
from govshare_stack.cli import build_parser
from govshare_stack.one_service import WEB_SERVICES, migrations_of

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "district", "city"]
KUBERNETES_VERSION = "1.33.0"
SOURCE_SERVICES = ["gateway", "catalog", "request", "exchange", "audit"]
GOVSHARE_IMAGE = "registry.example.gov.cn/govshare/govshare"


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed: apt-get install kubernetes-client"
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def _closed(schema: Any) -> Any:
    """The API server's strict field validation: an object with declared properties takes no others."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@cache
def operator_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, version = api_version.split("/")
    path = K8S / "crds" / "schemas" / f"{group}_{kind}_{version}.json".lower()
    assert path.exists(), f"no published schema kept for {api_version} {kind} (deploy/k8s/crds/SOURCES.md)"
    schema = _closed(json.loads(path.read_text()))
    # apiVersion, kind and metadata are the API server's, not the operator's.
    schema.setdefault("properties", {}).update({"metadata": {"type": "object"}})
    return schema


def workloads(overlay: str) -> list[dict[str, Any]]:
    return [d for d in rendered(overlay) if d["kind"] in {"Deployment", "StatefulSet", "Job"}]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_kubernetes_or_its_operator(overlay: str) -> None:
    problems: list[str] = []
    operator_kinds: set[str] = set()
    for doc in rendered(overlay):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            operator_kinds.add(doc["kind"])
            errors = jsonschema.Draft7Validator(operator_schema(doc["apiVersion"], doc["kind"])).iter_errors(doc)
            problems += [f"{where}: {e.message} at {'/'.join(map(str, e.path))}" for e in errors]
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {exc.message} at {'/'.join(map(str, exc.path))}")
    assert problems == []
    expected = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "Pooler", "ScheduledBackup"}
    assert expected | {"ServiceMonitor", "PrometheusRule"} <= operator_kinds


def test_the_operator_check_refuses_what_the_operator_would() -> None:
    cluster = next(d for d in rendered("district") if d["kind"] == "Cluster")
    validator = jsonschema.Draft7Validator(operator_schema(cluster["apiVersion"], "Cluster"))
    assert not list(validator.iter_errors(cluster))
    typo = {**cluster, "spec": {**cluster["spec"], "instancess": 3}}
    wrong_type = {**cluster, "spec": {**cluster["spec"], "instances": "three"}}
    assert any("instancess" in e.message for e in validator.iter_errors(typo))
    assert any("'three'" in e.message for e in validator.iter_errors(wrong_type))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_govshare_container_runs_a_command_the_image_has(overlay: str) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    assert entrypoint == ["govshare"]
    ran: set[tuple[str, ...]] = set()
    for w in workloads(overlay):
        for c in pod_spec(w)["containers"]:
            if not c["image"].startswith(GOVSHARE_IMAGE):
                continue
            assert "command" not in c, f"{w['metadata']['name']} overrides the image's entrypoint"
            args = build_parser().parse_args(c["args"])
            if args.command == "service":
                assert args.name in WEB_SERVICES and args.port == 8080
                migrations_of(WEB_SERVICES[args.name])  # the module the image must import exists
            elif args.command == "door":
                # Beside the gateway, asking it for decisions on the pod's own address.
                assert w["metadata"]["name"] == "gateway" and args.gateway_url == "http://127.0.0.1:8080"
                assert args.port == 8000 and pod_spec(w).get("shareProcessNamespace") is True
            else:
                assert args.command == "migrate"
            ran.add(tuple(c["args"][:2]))
    # The installed entry point accepts each of them (argparse exits 0 on --help only for a real subcommand).
    for args in ran:
        probe = subprocess.run(
            [str(Path(sys.executable).with_name("govshare")), args[0], "--help"], capture_output=True, check=False
        )
        assert probe.returncode == 0, probe.stderr
    services = {a[1] for a in ran if a[0] == "service"}
    assert services == {"gateway", "catalog", "request", "exchange", "audit", "console"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nothing_runs_as_root_writes_its_root_filesystem_or_goes_unbounded(overlay: str) -> None:
    for w in workloads(overlay):
        spec = pod_spec(w)
        assert spec["securityContext"]["runAsNonRoot"] is True, w["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, w["metadata"]["name"]
        for c in spec["containers"]:
            where = f"{w['metadata']['name']}/{c['name']}"
            ctx = c["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(
                c["resources"]["limits"]
            ), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_answer_probes_on_their_health_routes_and_have_budgets_and_autoscalers(overlay: str) -> None:
    docs = rendered(overlay)
    services = [w for w in workloads(overlay) if w["metadata"].get("labels", {}).get("govshare.gov.cn/role")]
    assert {w["metadata"]["name"] for w in services} == {
        "gateway",
        "catalog",
        "request",
        "exchange",
        "audit",
        "console",
    }
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    for w in services:
        c = pod_spec(w)["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert w["metadata"]["name"] in budgets and w["metadata"]["name"] in scaled


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_front_door_is_the_only_way_in_and_internal_routes_are_closed_there(overlay: str) -> None:
    docs = rendered(overlay)
    exposed = [d for d in docs if d["kind"] == "Service" and d["spec"].get("type") in {"LoadBalancer", "NodePort"}]
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    backends = {
        p["backend"]["service"]["name"] for i in ingresses for r in i["spec"]["rules"] for p in r["http"]["paths"]
    }
    assert exposed == [] and backends == {"frontdoor"}
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    gateway_from = policies["gateway-from-frontdoor"]["spec"]["ingress"][0]
    assert gateway_from["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "frontdoor"}}}]
    assert gateway_from["ports"] == [{"port": 8000}]  # the door beside the gateway, never the internal listener
    door_out = {p["port"] for rule in policies["frontdoor"]["spec"]["egress"] for p in rule["ports"]}
    assert door_out == {8000, 53}
    gateway = next(w for w in workloads(overlay) if w["metadata"]["name"] == "gateway")
    door = next(c for c in pod_spec(gateway)["containers"] if c["name"] == "door")
    assert {p["containerPort"] for p in door["ports"]} == {8000}
    for name in ("gateway", "gateway-replicas"):
        service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == name)
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["door"]
    urls = json.loads(
        next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("govshare-config"))[
            "data"
        ]["GOVSHARE_SERVICE_URLS"]
    )
    internal = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "gateway-internal")
    assert urls["gateway-internal"] == f"http://gateway-internal:{internal['spec']['ports'][0]['port']}"
    nginx = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "frontdoor-nginx")
    assert "location /internal/ { return 404; }" in nginx["data"]["nginx.conf"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_in_the_repository_and_every_one_referred_to_is_documented(overlay: str) -> None:
    docs = rendered(overlay)
    assert [d for d in docs if d["kind"] == "Secret"] == []
    referred: set[str] = set()
    for w in workloads(overlay):
        for c in pod_spec(w)["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referred.add(ref["name"])
        for v in pod_spec(w).get("volumes", []):
            if "secret" in v:
                referred.add(v["secret"]["secretName"])
    made_by_operators = {f"govshare-{s}" for s in SOURCE_SERVICES} | {"govshare-kafka-cluster-ca-cert"}
    readme = (K8S / "README.md").read_text()
    undocumented = sorted(s for s in referred - made_by_operators if f"`{s}`" not in readme)
    assert undocumented == []
    for line in (K8S / "base" / "config.env").read_text().splitlines():
        assert not re.search(r"(SECRET|PASSWORD)=", line), line


@pytest.mark.parametrize("overlay", ["district", "city"])
def test_each_source_service_has_its_topic_with_three_replicas_and_two_in_sync(overlay: str) -> None:
    docs = rendered(overlay)
    topics = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    assert set(topics) == {Settings().topic(s) for s in SOURCE_SERVICES}
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("govshare-config"))
    for spec in topics.values():
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2
        # The producer spreads keys over the partitions it is told of; the topic must have that many.
        assert spec["partitions"] == int(config["data"]["GOVSHARE_TOPIC_PARTITIONS"])
    users = {d["metadata"]["name"] for d in docs if d["kind"] == "KafkaUser"}
    assert users == {f"govshare-{s}" for s in SOURCE_SERVICES}
    pooler = next(d for d in docs if d["kind"] == "Pooler")
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "session"
    assert next(d for d in docs if d["kind"] == "Cluster")["spec"]["instances"] == 3


def test_govshare_migrate_brings_every_schema_to_its_newest_revision(postgres) -> None:
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
    env["GOVSHARE_DATABASE_URL"] = url
    govshare = str(Path(sys.executable).with_name("govshare"))
    out = subprocess.run([govshare, "migrate"], env=env, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    migrated = {line.rsplit(" ", 1)[-1] for line in out.stdout.splitlines() if "migrated schema" in line}
    assert migrated == set(SOURCE_SERVICES)
    for schema in SOURCE_SERVICES:
        versions = postgres.psql(f'SELECT count(*) FROM "{schema}".alembic_version', dbname=name)
        assert versions.strip() == "1", schema
    again = subprocess.run([govshare, "migrate", "catalog"], env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "migrated schema catalog" in again.stdout
    unknown = subprocess.run([govshare, "migrate", "nosuch"], env=env, capture_output=True, text=True, check=False)
    assert unknown.returncode == 2 and "no service named 'nosuch'" in unknown.stderr


def test_govshare_migrate_gives_each_schema_to_its_service_role_as_on_kubernetes(postgres) -> None:
    """On Kubernetes the roles come from CloudNativePG and the Job runs as the database's owner, given each
    service's own URL: every schema, and everything in it, belongs to its service's role, and to no other."""
    from govshare_common.database_roles import role_name, with_login

    name = f"k8s_{uuid.uuid4().hex[:8]}"
    superuser_url = postgres.create_database(name)
    owner = f"{name}_owner"
    postgres.psql(f"CREATE ROLE \"{owner}\" LOGIN PASSWORD 'owner-pass'")
    postgres.psql(f'ALTER DATABASE "{name}" OWNER TO "{owner}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
    env["GOVSHARE_DATABASE_URL"] = with_login(superuser_url, owner, "owner-pass")
    for service in SOURCE_SERVICES:
        role = role_name(name, service)
        postgres.psql(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{service}-pass' NOINHERIT")
        env[f"GOVSHARE_DATABASE_URL_{service.upper()}"] = with_login(superuser_url, role, f"{service}-pass")
    govshare = str(Path(sys.executable).with_name("govshare"))
    out = subprocess.run([govshare, "migrate"], env=env, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    for service in SOURCE_SERVICES:
        owners = postgres.psql(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE n.nspname = '{service}' UNION "
            f"SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '{service}'",
            dbname=name,
        ).split()
        assert owners == [role_name(name, service)], (service, owners)
    # A role reaches no other service's schema.
    refused = subprocess.run(
        [
            str(Path(sys.executable).with_name("python")),
            "-c",
            "import asyncio, asyncpg, sys\n"
            "async def main():\n"
            "    c = await asyncpg.connect(sys.argv[1])\n"
            "    await c.fetch('SELECT * FROM audit.alembic_version')\n"
            "asyncio.run(main())",
            env["GOVSHARE_DATABASE_URL_CATALOG"],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0 and "permission denied" in refused.stderr, refused.stderr


def test_every_metric_an_alert_or_the_dashboard_reads_is_one_a_service_publishes() -> None:
    import importlib

    from prometheus_client import REGISTRY

    for module in ("gateway.app", "catalog_svc.app", "request_svc.app", "exchange_svc.app", "audit_svc.app"):
        importlib.import_module(module)
    published: set[str] = set()
    for family in REGISTRY.collect():
        published.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(family.type, ())
        published.update(family.name + s for s in suffixes)
    docs = rendered("district")
    rules = next(d for d in docs if d["kind"] == "PrometheusRule")
    exprs = [r["expr"] for g in rules["spec"]["groups"] for r in g["rules"]]
    dashboard = json.loads((K8S / "components" / "observability" / "govshare-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    read = {name for e in exprs for name in re.findall(r"\bgovshare_[a-z_]+\b", e)}
    assert read and sorted(read - published) == []
