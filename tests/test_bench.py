"""The benchmark still runs and counts what it claims (no timings asserted: they are the bench's)."""

from __future__ import annotations

import json

from tools import bench


def test_bench_reports_one_secret_per_namespace_and_repository(capsys):
    assert bench.main(["--apps", "3,12", "--repeat", "1"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["apps", "resources", "per-app", "secrets"]
    for row in rows:
        apps, resources, per_app, secrets = row.split()[:4]
        config = bench.stack_config(int(apps))
        namespaces = {a["namespace"] for a in json.loads(config["backups:apps"])} | {"volsync-system"}
        repositories = json.loads(config["backups:repositories"])
        assert int(secrets) == len(namespaces) * len(repositories)  # not one per app
        assert float(per_app) == round(int(resources) / int(apps), 2)
