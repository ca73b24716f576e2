"""The dashboard and the alerts, checked against a real Prometheus scraping a real worker.

Debian's `prometheus` runs on loopback and scrapes a worker and `escalation lag --serve` while
replayed traffic flows through the broker. Every panel query of the generated dashboard and every
alert signal is then evaluated through Prometheus' HTTP API and must return series; the rules must
load and evaluate without error and pass `promtool check rules`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from deploy.grafana import generate
from stream.replay import ReplayConfig, iter_events
from stream.replay.kafka import produce
from stream.topics import EVENT_TOPICS
from tests.integration.kafka_helpers import (
    BOOTSTRAP,
    CORPUS,
    REPO,
    Isolated,
    free_port,
    produce_raw,
    running_worker,
    stop,
    wait_until_consuming,
)

pytestmark = pytest.mark.integration

SOURCE = CORPUS
DOCS = REPO / "docs" / "operations.md"


def get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            get(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout}s")


class PrometheusServer:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str) -> dict[str, Any]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer: dict[str, Any] = json.loads(get(url))
        except urllib.error.HTTPError as exc:  # a bad query answers 400 with the reason
            answer = json.loads(exc.read())
        return answer

    def series(self, expr: str) -> list[dict[str, Any]]:
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for(self, expr: str, predicate: Any, timeout: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.series(expr)
            if predicate(result):
                return result
            time.sleep(1)
        raise AssertionError(f"{expr} never satisfied the condition; last result {result}")


def concrete(expr: str) -> str:
    """A panel query as Grafana would send it: its variables replaced."""
    return expr.replace("$__rate_interval", "30s").replace('group=~"$group"', 'group=~".*"')


def values(result: list[dict[str, Any]]) -> list[float]:
    return [float(r["value"][1]) for r in result]


@pytest.fixture(scope="module")
def stack(isolated: Isolated, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A worker, the lag exporter and Prometheus scraping both every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus)")
    base = tmp_path_factory.mktemp("prometheus")
    worker_port, lag_port, prom_port = free_port(), free_port(), free_port()
    rules = base / "alerts.yaml"
    shutil.copy(generate.RULES_PATH, rules)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "escalation-worker",
                "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
            },
            {
                "job_name": "escalation-lag",
                "static_configs": [{"targets": [f"127.0.0.1:{lag_port}"]}],
            },
        ],
    }
    (base / "prometheus.yml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATION_TOPIC_PREFIX": isolated.prefix,
        "ESCALATION_APP_ID": isolated.app_id,
    }
    with running_worker(
        isolated,
        base / "state",
        base / "worker.log",
        {"ESCALATION_WEB_PORT": str(worker_port)},
    ):
        with (base / "lag.log").open("wb") as lag_log:
            lag = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "lag", "--serve", str(lag_port)]
                + ["--interval", "1"],
                cwd=REPO,
                env=env,
                stdout=lag_log,
                stderr=lag_log,
            )
        with (base / "prometheus.log").open("wb") as prom_log:
            server = subprocess.Popen(
                [
                    binary,
                    f"--config.file={base / 'prometheus.yml'}",
                    f"--storage.tsdb.path={base / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=prom_log,
                stderr=prom_log,
            )
        try:
            wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
            wait_http(f"http://127.0.0.1:{worker_port}/health/live")
            wait_until_consuming(isolated)
            yield {
                "prometheus": PrometheusServer(f"http://127.0.0.1:{prom_port}"),
                "worker": f"http://127.0.0.1:{worker_port}",
                "rules": rules,
                "logs": base,
            }
        finally:
            stop(server)
            stop(lag)


def test_dashboard_queries_and_alert_signals_return_series_while_traffic_flows(
    isolated: Isolated, stack: dict[str, Any]
) -> None:
    prom: PrometheusServer = stack["prometheus"]
    # Given replayed airline traffic flowing through the broker, and one record that cannot decode
    events = list(iter_events(SOURCE, ReplayConfig(conversations=120)))
    produce_raw(isolated, "support.messages", b"poison", b"\x00not avro")
    sender = threading.Thread(
        target=produce,
        args=(events, BOOTSTRAP),
        kwargs={
            "rate": 60.0,
            "topic_for": {kind: isolated.topic(name) for kind, name in EVENT_TOPICS.items()},
            "progress": False,
        },
    )
    sender.start()
    try:
        # When Prometheus has scraped both targets while the worker decides
        prom.wait_for(
            'up{job=~"escalation-worker|escalation-lag"}',
            lambda r: len(r) == 2 and all(v == 1.0 for v in values(r)),
        )
        prom.wait_for("sum(rate(escalation_decisions_total[30s]))", lambda r: values(r)[:1] > [0])

        # Then every panel query of the dashboard returns series (a query over a counter that
        # only the traffic creates, such as trigger hits, gets until the traffic has made it)
        deadline = time.monotonic() + 180
        for panel in generate.PANELS:
            for query in panel.queries:
                remaining = max(1.0, deadline - time.monotonic())
                try:
                    prom.wait_for(concrete(query.expr), bool, timeout=remaining)
                except AssertionError:
                    pytest.fail(f"panel {panel.title!r}: no series for {query.expr}")
        # And every alert's signal returns series, and its whole expression evaluates
        for alert in generate.ALERTS:
            remaining = max(1.0, deadline - time.monotonic())
            try:
                prom.wait_for(alert.signal, bool, timeout=remaining)
            except AssertionError:
                pytest.fail(f"alert {alert.name}: no series for {alert.signal}")
            assert prom.query(alert.expr)["status"] == "success", alert.expr
    finally:
        sender.join(timeout=120)
    assert not sender.is_alive()

    # And the values are the traffic's: input read on every input topic, the poison record
    # counted as a decode dead letter, lag exported for our group
    flowing = prom.series("sum by (topic) (escalation_events_in_total)")
    assert {r["metric"]["topic"] for r in flowing} == {
        isolated.topic(name) for name in EVENT_TOPICS.values()
    }
    prom.wait_for(
        'escalation_dead_letters_total{reason="decode"}', lambda r: values(r) == [1.0], timeout=30
    )
    groups = prom.series("escalation_consumergroup_lag_messages")
    assert {r["metric"]["group"] for r in groups} == {isolated.app_id}

    # And once the traffic stops the lag drains to zero, seen from outside the worker
    prom.wait_for(
        "sum(escalation_consumergroup_lag_messages)", lambda r: values(r) == [0.0], timeout=180
    )


def test_the_rules_load_and_evaluate_in_prometheus_and_pass_promtool(
    stack: dict[str, Any],
) -> None:
    prom: PrometheusServer = stack["prometheus"]

    def evaluated(groups: list[dict[str, Any]]) -> bool:
        rules = [r for g in groups for r in g["rules"]]
        return len(rules) == len(generate.ALERTS) and all(r.get("health") == "ok" for r in rules)

    deadline = time.monotonic() + 60
    groups: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        groups = json.loads(get(f"{prom.base}/api/v1/rules"))["data"]["groups"]
        if evaluated(groups):
            break
        time.sleep(1)
    assert evaluated(groups), groups
    assert {r["name"] for g in groups for r in g["rules"]} == {a.name for a in generate.ALERTS}

    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool comes with Debian's prometheus package"
    checked = subprocess.run(
        [promtool, "check", "rules", str(generate.RULES_PATH)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(generate.ALERTS)} rules found" in checked.stdout


def test_the_worker_endpoint_carries_every_documented_metric(stack: dict[str, Any]) -> None:
    body = get(f"{stack['worker']}/metrics").decode()
    families = list(text_string_to_metric_families(body))
    present = {f.name for f in families} | {s.name for f in families for s in f.samples}
    present |= {f"{f.name}_total" for f in families if f.type == "counter"}
    documented = set(re.findall(r"^\| `(escalation_[a-z_]+)`", DOCS.read_text(), re.M))
    exporter_side = ("escalation_consumergroup", "escalation_partition", "escalation_lag")
    worker_side = {name for name in documented if not name.startswith(exporter_side)}
    assert len(worker_side) >= 15, worker_side
    assert worker_side <= present, worker_side - present

    # Non-zero where the traffic of the first test flowed
    def total(name: str) -> float:
        return sum(s.value for f in families for s in f.samples if s.name == name)

    for name in (
        "escalation_events_in_total",
        "escalation_records_out_total",
        "escalation_decisions_total",
        "escalation_trigger_hits_total",
        "escalation_handoffs_total",
        "escalation_decision_latency_seconds_count",
        "escalation_assigned_partitions",
        "escalation_state_keys",
        "escalation_state_bytes",
        "escalation_rebalances_total",
        "escalation_recoveries_total",
        "escalation_policy_info",
    ):
        assert total(name) > 0, name
