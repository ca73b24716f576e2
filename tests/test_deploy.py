"""Deployment manifests: valid Kubernetes objects, and every env name and port the code's own.

There is no Docker engine or cluster here, so the checks are offline: kubernetes-validate with
the schemas it ships, compose parsed as YAML, and each name and number compared to the code that
reads it (Settings for environment variables, the worker's web server and the lag exporter for
ports and paths).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.grafana import generate
from stream.settings import Settings
from stream.worker import health, metrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
KUBERNETES_VERSION = "1.30.0"


def settings_env_names() -> set[str]:
    names = {f"ESCALATION_{name.upper()}" for name in Settings.model_fields}
    names.add("KAFKA_BOOTSTRAP_SERVERS")  # the alias Settings accepts for bootstrap_servers
    return names


def k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return docs


def kind(docs: list[dict[str, Any]], kind_name: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind_name and d["metadata"]["name"] == name)


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        found.extend(spec.get("containers", []))
    return found


def test_the_kustomization_lists_every_manifest_file_and_sets_every_image() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == present
    images = {c["image"] for c in containers(k8s_documents())}
    assert images == {image["name"] for image in kustomization["images"]}


@pytest.mark.parametrize(
    "doc", k8s_documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_every_manifest_is_a_valid_kubernetes_object(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    doc = kind(k8s_documents(), "StatefulSet", "escalation-worker")
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_workers_have_what_the_issue_asks_for() -> None:
    docs = k8s_documents()
    worker = kind(docs, "StatefulSet", "escalation-worker")
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # A volume for RocksDB at the worker's data dir
    (claim,) = worker["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e for e in container["env"]}
    assert mounts[claim["metadata"]["name"]] == env["ESCALATION_DATA_DIR"]["value"]
    # Config from the ConfigMap, secrets from the Secret
    assert container["envFrom"] == [{"configMapRef": {"name": "escalation-config"}}]
    secret = kind(docs, "Secret", "escalation-kafka")
    for name in ("ESCALATION_SASL_USERNAME", "ESCALATION_SASL_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "escalation-kafka", "key": name}
        assert name in secret["stringData"]
    config = kind(docs, "ConfigMap", "escalation-config")["data"]
    assert config["ESCALATION_SSL_CAFILE"].startswith(mounts["kafka-ca"])
    # Probes on the health endpoints, a disruption budget, a metrics Service
    assert container["livenessProbe"]["httpGet"]["path"] == health.LIVE_PATH
    assert container["readinessProbe"]["httpGet"]["path"] == health.READY_PATH
    pdb = kind(docs, "PodDisruptionBudget", "escalation-worker")
    assert pdb["spec"]["selector"] == worker["spec"]["selector"]
    service = kind(docs, "Service", "escalation-worker-metrics")
    assert service["spec"]["selector"] == worker["spec"]["selector"]["matchLabels"]
    assert kind(docs, "Deployment", "escalation-lag-exporter")["spec"]["replicas"] == 1


def test_every_env_name_the_manifests_set_is_a_setting() -> None:
    docs = k8s_documents()
    known = settings_env_names()
    names = set(kind(docs, "ConfigMap", "escalation-config")["data"])
    for container in containers(docs):
        names |= {e["name"] for e in container.get("env", [])}
    assert names, "no env found"
    assert names <= known, names - known


def test_the_manifest_settings_parse_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = k8s_documents()
    env = dict(kind(docs, "ConfigMap", "escalation-config")["data"])
    env.update(kind(docs, "Secret", "escalation-kafka")["stringData"])
    worker = kind(docs, "StatefulSet", "escalation-worker")["spec"]["template"]["spec"]
    env.update({e["name"]: e["value"] for e in worker["containers"][0]["env"] if "value" in e})
    for name, value in env.items():
        if name.startswith("ESCALATION_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.security_protocol == "SASL_SSL" and settings.sasl_password is not None
    assert settings.web_host == "0.0.0.0"
    assert str(settings.data_dir) == "/var/lib/escalation"


def test_every_port_matches_the_code() -> None:
    docs = k8s_documents()
    default_port = Settings.model_fields["web_port"].default
    assert default_port == generate.WORKER_PORT
    worker = kind(docs, "StatefulSet", "escalation-worker")["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    (port,) = container["ports"]
    assert port["containerPort"] == int(env["ESCALATION_WEB_PORT"]) == default_port
    exporter = kind(docs, "Deployment", "escalation-lag-exporter")["spec"]["template"]["spec"]
    (lag,) = exporter["containers"]
    args = lag["args"]
    serve = int(args[args.index("--serve") + 1])
    assert serve == lag["ports"][0]["containerPort"] == generate.LAG_EXPORTER_PORT
    for name, number in (
        ("escalation-worker-metrics", default_port),
        ("escalation-lag-exporter", serve),
    ):
        (service_port,) = kind(docs, "Service", name)["spec"]["ports"]
        assert service_port["port"] == number and service_port["targetPort"] == "metrics"
    # Prometheus finds both by the port name and labels the generated scrape config keeps
    scrape = yaml.safe_load(generate.K8S_SCRAPE_PATH.read_text())
    components = {
        job["relabel_configs"][0]["regex"].split(";")[1] for job in scrape["scrape_configs"]
    }
    assert components == {"worker", "lag-exporter"}
    assert metrics.METRICS_PATH == "/metrics"  # Prometheus' default metrics_path


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def test_compose_parses_and_has_every_service_the_issue_lists() -> None:
    services = compose()["services"]
    assert set(services) >= {
        "kafka",
        "topics",
        "worker-1",
        "worker-2",
        "lag-exporter",
        "prometheus",
        "grafana",
    }
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["topics"]["command"] == ["topics"]
    for worker in ("worker-1", "worker-2"):
        assert services[worker]["command"] == ["worker"]
        assert services[worker]["depends_on"]["topics"]["condition"] == (
            "service_completed_successfully"
        )
    # Every host path it mounts exists, the dashboard among them
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    assert (DEPLOY / "grafana" / "dashboards" / generate.DASHBOARD_PATH.name).exists()


def test_compose_env_names_are_settings_and_ports_match() -> None:
    services = compose()["services"]
    known = settings_env_names()
    ours = {
        name: service
        for name, service in services.items()
        if service.get("image", "").startswith("escalation-stream")
    }
    assert set(ours) == {"topics", "worker-1", "worker-2", "lag-exporter"}
    for name, service in ours.items():
        env = set(service["environment"])
        assert env <= known, (name, env - known)
    worker_env = services["worker-1"]["environment"]
    assert int(worker_env["ESCALATION_WEB_PORT"]) == generate.WORKER_PORT
    assert f":{generate.WORKER_PORT}{health.READY_PATH}" in " ".join(
        services["worker-1"]["healthcheck"]["test"]
    )
    lag_command = services["lag-exporter"]["command"]
    assert int(lag_command[lag_command.index("--serve") + 1]) == generate.LAG_EXPORTER_PORT
    scrape = yaml.safe_load(generate.SCRAPE_PATH.read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for s in job["static_configs"]
        for target in s["targets"]
    }
    assert targets == {
        f"worker-1:{generate.WORKER_PORT}",
        f"worker-2:{generate.WORKER_PORT}",
        f"lag-exporter:{generate.LAG_EXPORTER_PORT}",
    }
    assert set(targets) and all(t.split(":")[0] in services for t in targets)
