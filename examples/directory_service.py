"""A stand-in for the company's directory service, for `make run` and the tests.

    python examples/directory_service.py --port 8765 [--latency-ms 0]
        [--error-rate 0] [--down-mode 503|reset] [--refuse position=Contractor]

Standard library only. ``POST /accounts`` with a JSON body (``employee_id``,
``email``, ``full_name``…) and an ``Idempotency-Key`` header creates an
account and answers ``201 {"id": "acct-000001", …}``; the same key again
answers ``200`` with the same account (a 4xx is not kept under the key, so
the same key may be sent again with corrected data). It counts every call
per key, and the accounts it made per key and per employee.

Knobs, from the command line or at run time with ``POST /control`` (JSON):

* ``latency_ms``: every answer waits this long (the account is made first,
  so a caller that gives up or dies while waiting has lost the answer);
* ``error_rate``: this fraction of calls answers ``500`` (nothing made);
* ``down`` (true/false) and ``down_for`` (seconds, then back up by itself):
  while down every call answers ``503``, or with ``down_mode: "reset"`` the
  connection is reset without an answer — and is counted all the same;
* ``refuse``: ``{"position": ["Contractor"]}`` answers ``400 {"error": …}``
  for an account with that value.

``GET /stats`` reports the counts (``calls``, ``calls_by_key``,
``calls_while_down``, ``accounts_by_key``, ``accounts_by_employee``,
``replays_by_key``: calls answered with an existing account, ``answers`` to
``POST /accounts`` by status); ``POST /reset`` forgets everything; ``GET /health``.
"""

import argparse
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Directory:
    """The accounts and the counters, behind one lock."""

    def __init__(self, *, latency_ms=0.0, error_rate=0.0, down_mode="503", refuse=None):
        self.lock = threading.Lock()
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        self.down_mode = down_mode
        self.refuse = refuse or {}
        self.down_until = 0.0  # time.monotonic() deadline; inf: until told
        self.reset()

    def reset(self):
        self.accounts = {}  # key -> account
        self.calls_by_key = Counter()
        self.accounts_by_key = Counter()
        self.accounts_by_employee = Counter()
        self.answers = Counter()
        self.replays_by_key = Counter()
        self.calls = 0
        self.calls_while_down = 0
        self.next_id = 1

    @property
    def down(self):
        return time.monotonic() < self.down_until

    def control(self, knobs):
        with self.lock:
            if "latency_ms" in knobs:
                self.latency_ms = float(knobs["latency_ms"])
            if "error_rate" in knobs:
                self.error_rate = float(knobs["error_rate"])
            if "down_mode" in knobs:
                self.down_mode = str(knobs["down_mode"])
            if "refuse" in knobs:
                self.refuse = {k: list(v) for k, v in dict(knobs["refuse"]).items()}
            if "down_for" in knobs:
                self.down_until = time.monotonic() + float(knobs["down_for"])
            elif "down" in knobs:
                self.down_until = float("inf") if knobs["down"] else 0.0
            return self.knobs()

    def knobs(self):
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "down": self.down,
            "down_mode": self.down_mode,
            "refuse": self.refuse,
        }

    def stats(self):
        with self.lock:
            return {
                **self.knobs(),
                "calls": self.calls,
                "calls_while_down": self.calls_while_down,
                "calls_by_key": dict(self.calls_by_key),
                "accounts": len(self.accounts),
                "accounts_by_key": dict(self.accounts_by_key),
                "accounts_by_employee": {
                    str(k): v for k, v in self.accounts_by_employee.items()
                },
                "replays_by_key": dict(self.replays_by_key),
                "answers": {str(k): v for k, v in self.answers.items()},
            }

    def create(self, key, body):
        """(status, answer) for one call; counts it."""
        with self.lock:
            self.calls += 1
            self.calls_by_key[key] += 1
            if self.down:
                self.calls_while_down += 1
                return (None if self.down_mode == "reset" else 503), {
                    "error": "the directory is down"
                }
            if self.error_rate and random.random() < self.error_rate:
                return 500, {"error": "internal error (error_rate)"}
            if key in self.accounts:
                self.replays_by_key[key] += 1
                return 200, self.accounts[key]
            for field, values in self.refuse.items():
                if body.get(field) in values:
                    return 400, {
                        "error": f"{field} {body.get(field)!r} has no place in "
                        "the directory"
                    }
            if not isinstance(body.get("email"), str) or "@" not in body["email"]:
                return 400, {"error": "an account needs an email address"}
            account = {
                "id": f"acct-{self.next_id:06d}",
                "email": body["email"],
                "employee_id": body.get("employee_id"),
                "full_name": body.get("full_name", ""),
            }
            self.next_id += 1
            self.accounts[key] = account
            self.accounts_by_key[key] += 1
            self.accounts_by_employee[body.get("employee_id")] += 1
            return 201, account


class Handler(BaseHTTPRequestHandler):
    directory: Directory
    protocol_version = "HTTP/1.1"

    def _json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def _reset_connection(self):
        # SO_LINGER 0: close with a RST, as a crashed or firewalled server.
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.close_connection = True
        self.connection.close()

    def do_GET(self):  # noqa: N802 - the name http.server calls
        if self.path == "/stats":
            self._json(200, self.directory.stats())
        elif self.path == "/health":
            self._json(503 if self.directory.down else 200, self.directory.knobs())
        elif self.path == "/accounts":
            with self.directory.lock:
                accounts = list(self.directory.accounts.values())
            self._json(200, {"accounts": accounts})
        else:
            self._json(404, {"error": "no such path"})

    def do_POST(self):  # noqa: N802
        body = self._body()
        if body is None or not isinstance(body, dict):
            self._json(400, {"error": "the body must be a JSON object"})
            return
        if self.path == "/control":
            self._json(200, self.directory.control(body))
        elif self.path == "/reset":
            with self.directory.lock:
                self.directory.reset()
            self._json(200, {"reset": True})
        elif self.path == "/accounts":
            key = self.headers.get("Idempotency-Key", "")
            if not key:
                self._json(400, {"error": "the Idempotency-Key header is required"})
                return
            status, payload = self.directory.create(key, body)
            with self.directory.lock:
                self.directory.answers["reset" if status is None else status] += 1
            if status is None:
                self._reset_connection()
                return
            if self.directory.latency_ms and status in (200, 201):
                time.sleep(self.directory.latency_ms / 1000)
            self._json(status, payload)
        else:
            self._json(404, {"error": "no such path"})

    def log_message(self, format, *args):  # noqa: A002 - http.server's name
        if self.server.verbose:
            sys.stderr.write(f"directory: {format % args}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--down-mode", choices=["503", "reset"], default="503")
    parser.add_argument(
        "--refuse",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="answer 400 for accounts whose FIELD is VALUE (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    refuse = {}
    for rule in args.refuse:
        field, _, value = rule.partition("=")
        refuse.setdefault(field, []).append(value)
    directory = Directory(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        down_mode=args.down_mode,
        refuse=refuse,
    )
    handler = type("BoundHandler", (Handler,), {"directory": directory})
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    server.verbose = args.verbose
    print(
        f"directory: listening on http://{args.host}:{server.server_address[1]}/",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
