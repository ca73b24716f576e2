"""Generates the Grafana dashboard, the Prometheus alert rules and the scrape configs from code.

`python deploy/grafana/generate.py` (or `make dashboards`) rewrites:

- deploy/grafana/dashboards/escalation-stream.json  (provisioned by compose)
- deploy/prometheus/alerts.yaml                     (checked by `promtool check rules`)
- deploy/prometheus/prometheus.yml                  (compose: static targets)
- deploy/prometheus/scrape-kubernetes.yml           (k8s: the metrics Services, by label)

The dashboard is built with grafana-foundation-sdk, Grafana's own typed builders generated from
its schema, so a panel or query field that Grafana does not know fails here, not in Grafana;
grafanalib, the older alternative, is community-kept and lags the schema. Every query and alert
expression is listed in PANELS and ALERTS, which the real-Prometheus test evaluates one by one; a
test also checks that the committed files equal what this script generates.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    BigValueTextMode,
    LegendDisplayMode,
    LegendPlacement,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

DEPLOY = Path(__file__).resolve().parent.parent
DASHBOARD_PATH = DEPLOY / "grafana" / "dashboards" / "escalation-stream.json"
RULES_PATH = DEPLOY / "prometheus" / "alerts.yaml"
SCRAPE_PATH = DEPLOY / "prometheus" / "prometheus.yml"
K8S_SCRAPE_PATH = DEPLOY / "prometheus" / "scrape-kubernetes.yml"

# Ports: the worker's web server (Settings.web_port) and the lag exporter (`escalation lag
# --serve`); the manifests use the same numbers and a test checks them against the code.
WORKER_PORT = 6066
LAG_EXPORTER_PORT = 9308

# Budget for the time from a record's append to its decision being sent (p99).
LATENCY_P99_BUDGET_SECONDS = 1.0
DEAD_LETTER_RATIO = 0.01
LAG_FLOOR = 100

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
GROUP = 'group=~"$group"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str
    kind: str = "timeseries"  # or "stat"
    width: int = 12


def latency_panel(since: str, start: str, description: str) -> PanelSpec:
    """p50 and p99 of the decision latency histogram, measured from `since` (a label value)."""
    return PanelSpec(
        f"Decision latency, {start} → decision sent",
        "s",
        tuple(
            Query(
                f"histogram_quantile({q}, sum by (le) "
                f'(rate(escalation_decision_latency_seconds_bucket{{since="{since}"}}[{RATE}])))',
                f"p{round(q * 100)}",
            )
            for q in (0.5, 0.99)
        ),
        description,
    )


def stat_panel(title: str, query: Query, description: str, unit: str = "short") -> PanelSpec:
    """A quarter-width panel showing the latest value of one query."""
    return PanelSpec(title, unit, (query,), description, kind="stat", width=6)


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec(
        "Consumer lag per partition",
        "short",
        (
            Query(
                f"sum by (topic, partition) (escalation_consumergroup_lag_messages{{{GROUP}}})",
                "{{topic}}[{{partition}}]",
            ),
        ),
        "Records not yet consumed by the worker group (from `escalation lag --serve`).",
    ),
    PanelSpec(
        "Time lag (age of the oldest unconsumed record)",
        "s",
        (
            Query(
                f"max by (topic) (escalation_consumergroup_lag_seconds{{{GROUP}}})",
                "{{topic}}",
            ),
        ),
        "How far behind the group is, in time.",
    ),
    PanelSpec(
        "Throughput in, by topic",
        "ops",
        (Query(f"sum by (topic) (rate(escalation_events_in_total[{RATE}]))", "{{topic}}"),),
        "Input records read by the workers per second.",
    ),
    PanelSpec(
        "Throughput out",
        "ops",
        (
            Query(f"sum by (action) (rate(escalation_decisions_total[{RATE}]))", "decisions"),
            Query(f"sum(rate(escalation_handoffs_total[{RATE}]))", "handoffs"),
            Query(f"sum(rate(escalation_dead_letters_total[{RATE}]))", "dead letters"),
        ),
        "Decisions, handoff packages and dead letters sent per second.",
    ),
    PanelSpec(
        "Decisions by action",
        "ops",
        (Query(f"sum by (action) (rate(escalation_decisions_total[{RATE}]))", "{{action}}"),),
        "continue, offer_transfer, escalate.",
    ),
    PanelSpec(
        "Trigger hits by trigger and action",
        "ops",
        (
            Query(
                f"sum by (trigger, action) (rate(escalation_trigger_hits_total[{RATE}]))",
                "{{trigger}} → {{action}}",
            ),
        ),
        "Why decisions escalate; a decision with two hits counts twice.",
    ),
    latency_panel(
        "append",
        "record append",
        f"p50 and p99; the alert budget for p99 is {LATENCY_P99_BUDGET_SECONDS:g} s.",
    ),
    latency_panel(
        "event_time",
        "event time",
        "Includes how late events arrive; a replay of old history shows as +Inf.",
    ),
    PanelSpec(
        "Dead letters by reason",
        "ops",
        (Query(f"sum by (reason) (rate(escalation_dead_letters_total[{RATE}]))", "{{reason}}"),),
        "decode, validation, processing, policy.",
    ),
    PanelSpec(
        "Escalation rate by category",
        "percentunit",
        (
            Query(
                "sum by (category) "
                f'(rate(escalation_decisions_total{{action="escalate"}}[{RATE}])) '
                f"/ sum by (category) (rate(escalation_decisions_total[{RATE}]))",
                "{{category}}",
            ),
        ),
        "Share of decisions that escalate, per ticket category.",
    ),
    stat_panel(
        "Policy in force",
        Query("count by (version) (escalation_policy_info)", "{{version}}"),
        "Workers per policy version; more than one version means a rollout is under way.",
        unit="none",
    ),
    stat_panel(
        "Assigned partitions",
        Query("sum by (instance) (escalation_assigned_partitions)", "{{instance}}"),
        "Input partitions per worker.",
    ),
    PanelSpec(
        "Rebalances and recoveries",
        "short",
        (
            Query("sum(increase(escalation_rebalances_total[1h]))", "rebalances / 1h"),
            Query("sum(increase(escalation_recoveries_total[1h]))", "recoveries / 1h"),
        ),
        "A steady rise means workers are flapping.",
        width=6,
    ),
    PanelSpec(
        "State store",
        "bytes",
        (Query("sum by (instance) (escalation_state_bytes)", "{{instance}}"),),
        "RocksDB live data plus memtables per worker.",
        width=6,
    ),
)


@dataclass(frozen=True)
class Alert:
    name: str
    signal: str
    """The measured quantity; the real-Prometheus test asserts it returns series."""
    condition: str
    """What makes it fire, appended to the signal."""
    duration: str
    severity: str
    summary: str

    @property
    def expr(self) -> str:
        return f"{self.signal} {self.condition}"


ALERTS: tuple[Alert, ...] = (
    Alert(
        "EscalationLagGrowing",
        "sum by (group) (deriv(escalation_consumergroup_lag_messages[10m]))",
        f"> 0 and on (group) sum by (group) (escalation_consumergroup_lag_messages) > {LAG_FLOOR}",
        "15m",
        "warning",
        "Consumer lag of {{ $labels.group }} has grown for 15 minutes.",
    ),
    Alert(
        "EscalationNoProgress",
        "max by (group, topic, partition) "
        "(changes(escalation_consumergroup_committed_offset[10m]))",
        "== 0 and on (group, topic, partition) "
        "max by (group, topic, partition) (escalation_consumergroup_lag_messages) > 0",
        "5m",
        "critical",
        "{{ $labels.group }} commits nothing on {{ $labels.topic }}[{{ $labels.partition }}] "
        "while records wait.",
    ),
    Alert(
        "EscalationDeadLetterRate",
        "sum(rate(escalation_dead_letters_total[5m])) "
        "/ clamp_min(sum(rate(escalation_events_in_total[5m])), 1e-9)",
        f"> {DEAD_LETTER_RATIO}",
        "10m",
        "warning",
        f"More than {DEAD_LETTER_RATIO:.0%} of input records go to the dead-letter topic.",
    ),
    Alert(
        "EscalationDecisionLatencyP99",
        "histogram_quantile(0.99, sum by (le) "
        '(rate(escalation_decision_latency_seconds_bucket{since="append"}[5m])))',
        f"> {LATENCY_P99_BUDGET_SECONDS:g}",
        "10m",
        "warning",
        f"p99 from record append to decision is over {LATENCY_P99_BUDGET_SECONDS:g} s.",
    ),
    Alert(
        "EscalationLagExporterStale",
        "time() - max(escalation_lag_last_poll_timestamp_seconds)",
        "> 120",
        "5m",
        "warning",
        "The lag exporter has not measured the group for 2 minutes.",
    ),
)


def build_dashboard() -> dict[str, Any]:
    board = (
        dashboard.Dashboard("Escalation stream")
        .uid("escalation-stream")
        .tags(["escalation-stream", "kafka", "generated"])
        .description("Generated by deploy/grafana/generate.py; edit that, not this JSON.")
        .refresh("30s")
        .time("now-1h", "now")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
        .with_variable(
            dashboard.QueryVariable("group")
            .label("Consumer group")
            .datasource(DATASOURCE)
            .query("label_values(escalation_consumergroup_lag_messages, group)")
            .include_all(True)
            .all_value(".*")
        )
    )
    x = y = 0
    for spec in PANELS:
        if x + spec.width > 24:
            x, y = 0, y + 8
        panel: Any
        if spec.kind == "stat":
            panel = (
                stat.Panel()
                .graph_mode(BigValueGraphMode.NONE)
                .text_mode(BigValueTextMode.VALUE_AND_NAME)
                .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
            )
        else:
            panel = (
                timeseries.Panel()
                .legend(
                    common.VizLegendOptions()
                    .display_mode(LegendDisplayMode.TABLE)
                    .placement(LegendPlacement.BOTTOM)
                    .calcs(["lastNotNull", "max"])
                    .show_legend(True)
                )
                .tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI))
            )
        panel = (
            panel.title(spec.title)
            .description(spec.description)
            .unit(spec.unit)
            .datasource(DATASOURCE)
            .grid_pos(GridPos(h=8, w=spec.width, x=x, y=y))
        )
        for ref, query in zip("ABCDEFGH", spec.queries, strict=False):
            panel = panel.with_target(
                prometheus.Dataquery()
                .expr(query.expr)
                .legend_format(query.legend)
                .ref_id(ref)
                .datasource(DATASOURCE)
            )
        board = board.with_panel(panel)
        x += spec.width
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return encoded


def build_rules() -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": "escalation-stream",
                "rules": [
                    {
                        "alert": a.name,
                        "expr": a.expr,
                        "for": a.duration,
                        "labels": {"severity": a.severity},
                        "annotations": {
                            "summary": a.summary,
                            "runbook": "docs/operations.md#alerts",
                        },
                    }
                    for a in ALERTS
                ],
            }
        ]
    }


def build_scrape_config() -> dict[str, Any]:
    """Compose: both workers and the lag exporter by their service names."""
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["alerts.yaml"],
        "scrape_configs": [
            {
                "job_name": "escalation-worker",
                "static_configs": [
                    {"targets": [f"worker-1:{WORKER_PORT}", f"worker-2:{WORKER_PORT}"]}
                ],
            },
            {
                "job_name": "escalation-lag",
                "static_configs": [{"targets": [f"lag-exporter:{LAG_EXPORTER_PORT}"]}],
            },
        ],
    }


def build_kubernetes_scrape_config() -> dict[str, Any]:
    """Kubernetes: every endpoint of a Service labelled for scraping, one job per component."""

    def job(name: str, component: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "kubernetes_sd_configs": [{"role": "endpoints"}],
            "relabel_configs": [
                {
                    "source_labels": [
                        "__meta_kubernetes_service_label_app_kubernetes_io_name",
                        "__meta_kubernetes_service_label_app_kubernetes_io_component",
                        "__meta_kubernetes_endpoint_port_name",
                    ],
                    "regex": f"escalation-stream;{component};metrics",
                    "action": "keep",
                },
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "instance"},
            ],
        }

    return {
        "scrape_configs": [
            job("escalation-worker", "worker"),
            job("escalation-lag", "lag-exporter"),
        ]
    }


HEADER = "# Generated by deploy/grafana/generate.py; edit that, not this file.\n"


def rendered() -> dict[Path, str]:
    def dump(data: dict[str, Any]) -> str:
        return HEADER + yaml.safe_dump(data, sort_keys=False, width=100)

    return {
        DASHBOARD_PATH: json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n",
        RULES_PATH: dump(build_rules()),
        SCRAPE_PATH: dump(build_scrape_config()),
        K8S_SCRAPE_PATH: dump(build_kubernetes_scrape_config()),
    }


def main() -> int:
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(DEPLOY.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
