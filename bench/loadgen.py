"""Open-loop HTTP load: ``n`` POSTs at a steady ``rate``, latencies to JSON.

Runs in its own process so the client does not share the server's CPU time
slices within one interpreter. Requests are scheduled on a fixed timetable
(open loop), so a slow server cannot slow the offered load down and hide its
own latency; each latency is measured from the scheduled send time.
"""

import argparse
import http.client
import json
import queue
import threading
import time
from urllib.parse import urlsplit

# Below gunicorn's keep-alive (2 s): at a low rate spread over many threads a
# connection idles longer than that, and the server closes it.
IDLE_REOPEN_SECONDS = 1.0


def run(url: str, n: int, rate: float, threads: int, warmup: int) -> dict:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    jobs: queue.Queue = queue.Queue()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    total = n + warmup

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        last_used = time.perf_counter()
        while True:
            item = jobs.get()
            if item is None:
                return
            index, due = item
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if time.perf_counter() - last_used > IDLE_REOPEN_SECONDS:
                # The server may be closing it right now (keep-alive ran
                # out): a request sent into that fails for no fault of its.
                conn.close()
                conn = http.client.HTTPConnection(
                    parts.hostname, parts.port, timeout=30
                )
            try:
                conn.request("POST", path, body=b"", headers={"Content-Length": "0"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 201
                error = "" if ok else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(
                    parts.hostname, parts.port, timeout=30
                )
                ok, error = False, f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - due
            last_used = time.perf_counter()
            with lock:
                if not ok:
                    errors.append(error)
                elif index >= warmup:
                    latencies.append(elapsed)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    start = time.perf_counter() + 0.05
    interval = 1.0 / rate
    # Feed the timetable gradually so queued jobs never pile up ahead of time.
    for index in range(total):
        due = start + index * interval
        while due - time.perf_counter() > 0.05:
            time.sleep(0.01)
        jobs.put((index, due))
    for _ in pool:
        jobs.put(None)
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - start
    return {
        "latencies": latencies,
        "errors": len(errors),
        "first_errors": errors[:5],
        "offered_rate": rate,
        "achieved_rate": total / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--threads", type=int, default=48)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = run(args.url, args.n, args.rate, args.threads, args.warmup)
    with open(args.out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
