"""Prometheus's own promtool judging a rendered alert on given series (built by `make engine`)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .conftest import Objects
from .mover import ENGINE_BIN


def promtool_alerts(folder: Path, objects: Objects, alertname: str, labels: dict[str, str], series: dict[str, str],
                    firing: dict[str, bool]) -> None:
    """Evaluate the rendered rule `alertname` with Prometheus's own promtool on `series` (metric,
    optionally with labels of its own, -> promtool's value notation, one sample a minute, all with
    `labels`): firing or not at each time."""
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())

    def named(metric: str) -> str:
        name, _, own = metric.partition("{")
        return f"{name}{{{','.join(filter(None, [own.rstrip('}'), selector]))}}}"
    promtool_test(folder, objects, alertname, {named(metric): values for metric, values in series.items()},
                  {at: [labels] if fires else [] for at, fires in firing.items()})


def promtool_test(folder: Path, objects: Objects, alertname: str, series: dict[str, str],
                  firing: dict[str, list[dict[str, str]]]) -> None:
    """Evaluate the rendered rule `alertname` with promtool on `series` (a series in Prometheus's
    notation -> promtool's value notation, one sample a minute): at each time, exactly the alerts
    with these labels (the rule's own added) fire."""
    (rule,) = [v for k, v in objects.items() if k[0] == "PrometheusRule"]
    (group,) = [g for g in rule["spec"]["groups"] if any(r.get("alert") == alertname for r in g["rules"])]
    (alert,) = [r for r in group["rules"] if r["alert"] == alertname]

    def expected(labels: dict[str, str]) -> dict[str, Any]:
        annotations = {k: functools.reduce(lambda text, label: text.replace(f"{{{{ $labels.{label} }}}}", labels[label]),
                                           labels, v) for k, v in alert["annotations"].items()}
        return {"exp_labels": {**labels, **alert["labels"]}, "exp_annotations": annotations}
    (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}))
    (folder / "test.yaml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yaml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m",
                   "input_series": [{"series": name, "values": values} for name, values in series.items()],
                   "alert_rule_test": [{"eval_time": at, "alertname": alertname,
                                        "exp_alerts": [expected(labels) for labels in alerts]}
                                       for at, alerts in firing.items()]}],
    }))
    result = subprocess.run([str(ENGINE_BIN / "promtool"), "test", "rules", "test.yaml"], cwd=folder,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
