"""A private RabbitMQ cluster run by ``scripts/rabbitmq-cluster``, for the
cluster fault scenarios (``cluster``) and ``bench/chaos_cluster.py``.

Imports nothing of Django: a runner picks the cluster's URLs before it sets
Django up.
"""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "rabbitmq-cluster"
RABBITMQ_BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


def rabbitmq_installed() -> bool:
    return (RABBITMQ_BIN / "rabbitmq-server").exists()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(size: int = 3, start: int = 5691) -> int:
    """A base port such that the ``size`` AMQP ports from it, and their
    distribution ports (25000 + each), are free."""
    for base in range(start, start + 400, 10):
        ports = [base + i for i in range(size)]
        if all(_port_free(p) and _port_free(25000 + p) for p in ports):
            return base
    raise RuntimeError("no free ports for a private cluster")


@dataclass
class Cluster:
    """A private cluster run by ``scripts/rabbitmq-cluster``, in its own
    directory, with its own node names (``<prefix>1`` …) and ports."""

    directory: Path
    prefix: str = "q"
    base_port: int = 5681
    size: int = 3
    log: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return [f"{self.prefix}{n}" for n in range(1, self.size + 1)]

    def url(self, node: str) -> str:
        port = self.base_port + int(node[len(self.prefix) :]) - 1
        return f"amqp://guest:guest@127.0.0.1:{port}//"

    def urls(self, first: str | None = None) -> str:
        """The URL list (``;``-separated), starting at node ``first``."""
        nodes = self.nodes
        if first is not None:
            at = nodes.index(first)
            nodes = nodes[at:] + nodes[:at]
        return ";".join(self.url(node) for node in nodes)

    def run(self, *args: str, check: bool = True, timeout: float = 240) -> str:
        env = {
            **os.environ,
            "RABBITMQ_CLUSTER_DIR": str(self.directory),
            "RABBITMQ_CLUSTER_PREFIX": self.prefix,
            "RABBITMQ_CLUSTER_BASE_PORT": str(self.base_port),
            "RABBITMQ_CLUSTER_NODES": str(self.size),
        }
        result = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.log.append(f"{' '.join(args)}: {result.returncode}")
        if check and result.returncode:
            raise RuntimeError(
                f"rabbitmq-cluster {' '.join(args)} failed:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def start(self) -> None:
        self.run("start")

    def destroy(self) -> None:
        self.run("destroy", check=False)

    def kill(self, node: str) -> None:
        self.run("kill", node)

    def stop(self, node: str) -> None:
        self.run("stop", node)

    def restart(self, node: str) -> None:
        self.run("restart", node)

    def pause(self, node: str) -> None:
        self.run("pause", node)

    def resume(self, node: str) -> None:
        self.run("resume", node)

    def running(self) -> list[str]:
        out = self.run("status", check=False)
        return [
            line.split("@")[0]
            for line in out.splitlines()
            if line.endswith("  running") and "@" in line
        ]

    def leader(self, queue: str) -> str | None:
        out = self.run("leader", queue, check=False).strip()
        return out.partition("@")[0] or None

    def heal(self) -> None:
        """Start (or wake) every node that does not answer: what a scenario
        that failed half-way left behind must not fail the next one."""
        for node in self.nodes:
            if node not in self.running():
                self.restart(node)

    def wait_all_running(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.running()) < self.size:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every node running within {timeout}s")
            time.sleep(1.0)
