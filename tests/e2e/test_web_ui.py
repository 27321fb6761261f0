"""The Kopia web UI as the program renders it, run for real: its login holds.

The Deployment's own command and environment (its env, the login Secret, the repository Secret
through envFrom) start Kopia's server in a network namespace that has only loopback, against a
repository a mover wrote; curl in the same namespace then asks it with and without the login.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path

from .cluster import EXPORT, Cluster, container_env, ok, write_tree
from .conftest import render, stack_config
from .mover import run_container

UI_PASSWORD = "ui-e2e-password-7c1d"


def test_the_web_ui_answers_only_with_its_login(engine: Path, folders: Callable[[str], Path]) -> None:
    nas = {**stack_config("mover")["repositories"][0], "ui": {"enabled": True, "password": UI_PASSWORD}}
    objects = render("mover", repositories=[nas])
    cluster = Cluster(folders, objects)
    write_tree(folders("pvc/radarr"), 1000, {"config.xml": b"<Config/>\n"})
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))

    deployment = objects[("Deployment", "volsync-system", "kopia-ui-nas")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {**container_env(objects, "volsync-system", container), "PATH": "/opt/engine:/usr/bin:/bin", "HOME": "/tmp"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    work = folders("ui-work")
    os.chown(work, pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"])
    server = " ".join(shlex.quote(part) for part in container["command"])
    url = "http://127.0.0.1:51515/"  # the UI page; its API also wants the session cookie the page sets
    probe = (
        f"( {server} ) > /tmp/server.log 2>&1 & "
        "for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:51515/ && break; sleep 0.3; done; "
        f"echo anonymous=$(curl -s -o /dev/null -w '%{{http_code}}' {url}); "
        f"echo wrong=$(curl -s -o /dev/null -w '%{{http_code}}' -u kopia:not-the-password {url}); "
        f"echo login=$(curl -s -o /dev/null -w '%{{http_code}}' -u \"$KOPIA_SERVER_USERNAME:$KOPIA_SERVER_PASSWORD\" {url}); "
        "kill %1; cat /tmp/server.log"
    )
    security = pod["securityContext"]
    result = run_container(["bash", "-c", probe], env, [(work, mounts["work"]), (cluster.export, EXPORT)],
                           security["runAsUser"], security["runAsGroup"], (security["runAsGroup"], security["fsGroup"]),
                           isolated_network=True)
    assert "anonymous=401" in result.output and "wrong=401" in result.output, result.output[-3000:]
    assert "login=200" in result.output, result.output[-3000:]
    assert "--without-password" not in server
