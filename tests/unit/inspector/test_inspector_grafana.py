"""deploy/grafana/sipbridge.json: a dashboard whose every query names metrics a bridge exports (a panel over a
metric nobody exports would stay empty without a word), with the panels an operator looks for."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest

import sipbridge.inspector.metrics
import sipbridge.metrics  # registers the node's gauges
from sipbridge.stats import Stats

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "sipbridge.json"
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("", "_total"), "gauge": ("",)}


def exported_names() -> set[str]:
    text = (generate_latest() + Stats("NE_test").exposition()).decode()
    names = set()
    for name, kind in _TYPE.findall(text):
        names.update(name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return names


def test_every_query_names_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    named = {m for expr in exprs for m in re.findall(r"\b(?:sipbridge|livekit)_[a-z_]+", expr)}
    assert named and named <= exported_names(), named - exported_names()
    assert sipbridge.inspector.metrics.CALLS._name in {n.removesuffix("_total") for n in named}


def test_the_panels_an_operator_looks_for_are_there() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in dashboard["panels"]]
    for wanted in ("Calls in progress", "Setup latency", "Failures by SIP status", "MOS distribution", "by trunk"):
        assert any(wanted in title for title in titles), wanted
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "instance", "trunk"}
