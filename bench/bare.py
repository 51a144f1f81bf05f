"""The machine's limit: a bare pika consume+ack loop writing with COPY.

No validation, no framework: take what is ready from the queue, COPY the
events straight into the feed table, commit, then ack everything up to the
last message (``multiple=True``). The bench times it from outside, by the
same probe as every other consumer (``bench.run.drain_rate``); it prints
``{"events": n, "seconds": s}`` as it timed itself (first message to last
commit) for a run by hand.
"""

import argparse
import json
import time

import pika
import psycopg

COLUMNS = (
    "source, event_id, type, time, data, text, department, traceparent, received_at"
)


def received_at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def row(env: dict, received: str) -> tuple:
    """The feed row the bare loop COPYs for ``env`` (``COLUMNS``): the event
    as it came, its type for text, no department, people or sender."""
    return (
        env["source"],
        env["id"],
        env["type"],
        env["time"],
        json.dumps(env["data"]),
        env["type"],
        "",
        "",
        received,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--expect", type=int, required=True)
    args = parser.parse_args()

    db = psycopg.connect(args.db)
    connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=50)
    done = 0
    first = None
    pending: list[tuple] = []
    last_tag = None

    def flush() -> None:
        nonlocal pending, last_tag, done
        if not pending:
            return
        with (
            db.cursor() as cur,
            cur.copy(f"COPY feed_feedevent ({COLUMNS}) FROM STDIN") as copy,
        ):
            for row in pending:
                copy.write_row(row)
        db.commit()
        channel.basic_ack(last_tag, multiple=True)
        done += len(pending)
        pending = []

    for method, _props, body in channel.consume(args.queue, inactivity_timeout=0.2):
        if method is None:
            flush()
            if done >= args.expect:
                break
            continue
        if first is None:
            first = time.perf_counter()
        task_args = json.loads(body)[0]
        received = received_at()
        for env in task_args[0]:
            pending.append(row(env, received))
        last_tag = method.delivery_tag
        if len(pending) >= 1000:
            flush()
        if done >= args.expect:
            break
    flush()
    seconds = time.perf_counter() - (first or time.perf_counter())
    print(json.dumps({"events": done, "seconds": seconds}))
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
