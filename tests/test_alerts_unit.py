"""conf/renewer/alerts.yaml: each rule is valid PromQL (parsed by promql-parser, the Rust port of
Prometheus' own parser) and names only metrics the renew service exports."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client.exposition import generate_latest

from spark_secrets.renew.metrics import Metrics, registry_for

RULES = Path(__file__).resolve().parent.parent / "conf" / "renewer" / "alerts.yaml"


def _rules() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _exported() -> set[str]:
    metrics = Metrics(renewals=1, nearest_expiry_ms=2_000_000_000_000,
                      expiry_by_app=[(("alice", "etl"), 2_000_000_000_000)])
    text = generate_latest(registry_for(metrics, clock=lambda: 1_900_000_000.0)).decode()
    return set(re.findall(r"^(spark_secrets_\w+?)(?:\{| )", text, re.M))


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: str(r["alert"]))
def test_a_rule_is_promql_over_exported_metrics(rule: dict[str, object]) -> None:
    expr = str(rule["expr"])
    promql_parser.parse(expr)  # raises on a syntax error
    if "for" in rule:
        promql_parser.parse_duration(str(rule["for"]))
    named = set(re.findall(r"spark_secrets_\w+", expr))
    assert named and named <= _exported(), named - _exported()
    assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]


def test_the_checks_can_fail() -> None:
    """Control: a broken expression and an unknown metric are caught."""
    with pytest.raises(ValueError):
        promql_parser.parse("min by (namespace) (spark_secrets_seconds_until_expiry < ")
    assert "spark_secrets_seconds_until_expiry" in _exported()
    assert "spark_secrets_token_expiry_seconds" not in _exported()
