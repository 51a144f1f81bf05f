"""A private RabbitMQ node on loopback, for tests that must stop a broker.

The machine's own node (``rabbit@localhost``, port 5672) is shared and must
never be stopped; a scenario that restarts RabbitMQ starts a node of its own
instead, and stops only that one. How (see DESIGN.md, "A private RabbitMQ
cluster on one machine"):

- the programs in ``/usr/lib/rabbitmq/bin/`` are called directly (the
  ``/usr/sbin`` wrappers switch to the ``rabbitmq`` user and its cookie);
- the node has a ``HOME`` of its own with its own ``.erlang.cookie``, so its
  CLI cannot reach the machine's node even by mistake, and every
  ``rabbitmqctl`` call names the node (``-n``);
- an empty ``RABBITMQ_CONF_ENV_FILE`` (the machine's sets ``NODENAME``), a
  config file of its own listening on a free port, its own data and log
  directories. epmd is shared and never stopped.
"""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
MACHINE_NODE = "rabbit@localhost"


def rabbitmq_available() -> bool:
    """The server's programs are installed (a private node can be started)."""
    return (RABBITMQ_BIN / "rabbitmq-server").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRabbitNode:
    """One RabbitMQ node of its own: ``start()``, ``url``, ``stop_app()`` /
    ``start_app()`` (RabbitMQ's application restarted, the Erlang node kept),
    ``stop()`` (the node gone, its directory removed)."""

    def __init__(self, base_dir: Path, name: str | None = None) -> None:
        self.name = name or f"p{os.getpid()}x{secrets.token_hex(3)}@localhost"
        if self.name.split("@")[0] == MACHINE_NODE.split("@")[0]:
            raise ValueError("a private node must not be named like the machine's")
        self.dir = Path(base_dir) / self.name.split("@")[0]
        self.port = _free_port()
        self.dist_port = _free_port()
        self._server: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        home = self.dir / "home"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
        }
        env.update(
            HOME=str(home),
            RABBITMQ_CONF_ENV_FILE=str(self.dir / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq.conf"),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.dir / "node.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def _prepare(self) -> None:
        home = self.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20).upper())
            cookie.chmod(0o400)
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            "vm_memory_high_watermark.relative = 0.2\n"
            "disk_free_limit.absolute = 50MB\n"
        )

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """``rabbitmqctl -n <this node> ...`` (never another node)."""
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout

    def start(self, timeout: float = 120) -> "PrivateRabbitNode":
        self._prepare()
        log = open(self.dir / "server.out", "ab")  # noqa: SIM115 - kept by Popen
        self._server = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not (self.dir / "node.pid").exists():
            if self._server.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.server_output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} wrote no pid file in {timeout}s")
            time.sleep(0.2)
        self.ctl("wait", str(self.dir / "node.pid"), timeout=timeout)
        return self

    def server_output(self) -> str:
        path = self.dir / "server.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_app(self) -> None:
        """Stop RabbitMQ's application on this node (the node keeps running)."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")

    def stop(self) -> None:
        """Stop the node and remove its files."""
        if self._server is not None and self._server.poll() is None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.ctl("stop", timeout=60)
            try:
                self._server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._server.pid, signal.SIGKILL)
                self._server.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PrivateRabbitNode":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
