"""Helpers of the automation tests: a small generated challenge, and a real `dagster dev` to drive over GraphQL.

The small challenge (two performances of 6 s, obama and biden, two prompts) is
enough for sensors, backfills and the UI, and builds in seconds where the full
generated challenge takes minutes. :class:`Chromium` drives Debian's headless
``chromium`` over the DevTools protocol (websocket-client), as a user's browser.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import websocket
import yaml

from support.ports import free_ports
from tiktokfer_assets.environments import local_resources
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.testkit.generator import GeneratedChallenge, VideoPlan, build_challenge

BIN = Path(sys.executable).parent
SMALL_PROMPTS = [("ready", "ready, go"), ("kiss", "kiss")]


def small_challenge(out_dir: Path, name: str = "small", photos_root: Path | None = None) -> GeneratedChallenge:
    """Two performance videos (obama, biden) over a two-prompt sound; ground truth in ``.truth``."""
    return build_challenge(
        out_dir, name=name, seed=1, prompts=SMALL_PROMPTS, photos_root=photos_root,
        plans=[VideoPlan("v01", ["obama"], shift_s=0.5), VideoPlan("v02", ["biden"], shift_s=0.2)],
    )


def write_definition(generated: GeneratedChallenge, path: Path, **changes) -> Path:
    """A copy of the generated challenge's YAML at ``path`` (absolute paths), with ``changes`` applied."""
    data = yaml.safe_load(generated.challenge_yaml.read_text())
    data["source"]["path"] = str(generated.root / data["source"]["path"])
    data["baseline"]["path"] = str(generated.root / data["baseline"]["path"])
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class DagsterDev:
    """A running ``dagster dev`` (webserver + daemon) on the project's workspace."""

    url: str
    env: dict[str, str]
    log_path: Path
    tiktokfer_home: Path

    def table_store(self):
        """The table store the server's runs write to."""
        return local_resources(self.tiktokfer_home)["table_store"]

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.load(response)
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def cli(self, program: str, *args: str) -> subprocess.CompletedProcess:
        """Run ``dagster`` or ``tiktokfer`` on the same instance, workspace and table store."""
        return subprocess.run(
            [str(BIN / program), *args], cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True,
        )

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def wait_until(condition, poll_s: float = 1.0):
    """Poll ``condition()`` until it returns a truthy value (no time limit: a stuck test is killed by the CI's)."""
    while True:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)


@contextmanager
def dagster_dev(tmp: Path, tiktokfer_home: Path, extra_env: dict[str, str] | None = None) -> Iterator[DagsterDev]:
    """``dagster dev`` on a free loopback port with ``DAGSTER_HOME`` in ``tmp`` and the given ``TIKTOKFER_HOME``.

    Runs are queued and the daemon (started by ``dagster dev``) launches them,
    as on a developer's machine. Yields once the code location has loaded.
    """
    dagster_home = tmp / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump({
        "run_coordinator": {
            "module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
            "config": {"max_concurrent_runs": 2, "dequeue_interval_seconds": 1},
        },
        "telemetry": {"enabled": False},
    }))
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "TIKTOKFER_HOME": str(tiktokfer_home),
        "TIKTOKFER_ENV": "local",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **(extra_env or {}),
    }
    log_path = tmp / "dagster_dev.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = DagsterDev(f"http://127.0.0.1:{port}", env, log_path, tiktokfer_home)
    try:
        def loaded():
            if process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{server.log_tail()}")
            try:
                data = server.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name "
                                      "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
            except (urllib.error.URLError, ConnectionError):
                return False
            entries = data["workspaceOrError"]["locationEntries"]
            if not entries or entries[0]["locationOrLoadError"] is None:
                return False
            location = entries[0]["locationOrLoadError"]
            assert location["__typename"] == "RepositoryLocation", location
            return True

        wait_until(loaded)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # its webserver can hang on shutdown
            pass
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { runId status } ... on PythonError { message } }
}
"""

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def wait_for_run(server: DagsterDev, run_id: str) -> str:
    """The run's final status."""
    def finished():
        run = server.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        return run["status"] if run["status"] in FINISHED else None

    return wait_until(finished)


class Chromium:
    """Headless Chromium driven over the DevTools protocol: navigate, read the page's text, press keys,
    take screenshots."""

    def __init__(self, user_data_dir: Path, width: int = 1600, height: int = 1000):
        executable = shutil.which("chromium")
        assert executable, "Debian's chromium is not installed: apt-get install -y chromium"
        self.user_data_dir = user_data_dir
        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={user_data_dir}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        port_file = user_data_dir / "DevToolsActivePort"
        wait_until(lambda: self._alive() and port_file.exists() and port_file.read_text().strip(), poll_s=0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True, timeout=120)
        self._id = 0
        self.call("Page.enable")

    def _alive(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"chromium exited with {self.process.returncode}")
        return True

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                assert "error" not in message, (method, message["error"])
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''")

    def wait_for_text(self, *needles: str) -> str:
        """The page's text once it contains every needle."""
        def found():
            text = self.text()
            return text if all(n in text for n in needles) else None

        return wait_until(found, poll_s=0.5)

    def wait_for_stable(self, expression: str, poll_s: float = 0.5):
        """The value of ``expression`` once it is truthy and unchanged over ``poll_s`` (e.g. a graph done drawing)."""
        def settled():
            before = self.evaluate(expression)
            time.sleep(poll_s)
            after = self.evaluate(expression)
            return after if after and after == before else None

        return wait_until(settled, poll_s=0)

    def press(self, key: str, code: str, *, alt: bool = False) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code, modifiers=1 if alt else 0,
                      windowsVirtualKeyCode=ord(key.upper()))

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        self.ws.close()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
