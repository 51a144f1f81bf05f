"""The machine's limit for per-event messages: consume+ack + COPY, no framework.

Drains a queue of single-CloudEvent messages (what other services publish on
``portal.events``) with a bare client, ``pika`` (blocking) or ``aio-pika``
(asyncio): decode each body, COPY what is ready into the feed table (no
validation, no duplicate check, no event log), commit, then ack everything
up to the last message (``multiple=True``), at most ``--prefetch`` messages
(default 1,000) per commit. Prints ``{"events": n, "seconds": s}`` measured from the
first message to the last commit, with the process's CPU seconds meanwhile.
"""

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime

import psycopg

COLUMNS = (
    "source, event_id, type, time, data, text, department, traceparent, received_at"
)
BATCH = 1000


def row(body: bytes, now: datetime) -> tuple:
    env = json.loads(body)
    return (
        env["source"],
        env["id"],
        env["type"],
        env["time"],
        json.dumps(env["data"]),
        env["type"],
        "",
        "",
        now,
    )


def copy_rows(db: psycopg.Connection, rows: list[tuple]) -> None:
    with (
        db.cursor() as cur,
        cur.copy(f"COPY feed_feedevent ({COLUMNS}) FROM STDIN") as copy,
    ):
        for values in rows:
            copy.write_row(values)
    db.commit()


def drain_pika(args: argparse.Namespace) -> dict:
    import pika

    db = psycopg.connect(args.db)
    connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=args.prefetch)
    done, first, last_tag, cpu = 0, None, None, 0.0
    pending: list[tuple] = []

    def flush() -> None:
        nonlocal pending, done
        if not pending:
            return
        copy_rows(db, pending)
        channel.basic_ack(last_tag, multiple=True)
        done += len(pending)
        pending = []

    for method, _props, body in channel.consume(args.queue, inactivity_timeout=0.05):
        if method is None:
            flush()
            if done >= args.expect:
                break
            continue
        if first is None:
            first, cpu = time.perf_counter(), time.process_time()
        pending.append(row(body, datetime.now(UTC)))
        last_tag = method.delivery_tag
        if len(pending) >= args.prefetch:
            flush()
        if done >= args.expect:
            break
    flush()
    seconds = time.perf_counter() - (first or time.perf_counter())
    channel.cancel()
    connection.close()
    return {
        "events": done,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
    }


async def drain_aio(args: argparse.Namespace) -> dict:
    import aio_pika

    db = psycopg.connect(args.db)
    connection = await aio_pika.connect(args.amqp)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=args.prefetch)
    queue = await channel.get_queue(args.queue, ensure=False)
    done, first, cpu = 0, None, 0.0
    pending: list[tuple] = []
    # No idle timeout (cancelling the iterator's wait breaks it): a batch is
    # stored when it reaches the prefetch, which RabbitMQ always fills, or
    # when it completes the expected count.
    async with queue.iterator() as messages:
        async for message in messages:
            if first is None:
                first, cpu = time.perf_counter(), time.process_time()
            pending.append(row(message.body, datetime.now(UTC)))
            if len(pending) >= args.prefetch or done + len(pending) >= args.expect:
                copy_rows(db, pending)
                await message.ack(multiple=True)
                done += len(pending)
                pending = []
                if done >= args.expect:
                    break
    seconds = time.perf_counter() - (first or time.perf_counter())
    await connection.close()
    return {
        "events": done,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=("pika", "aio-pika"), required=True)
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--prefetch", type=int, default=BATCH)
    args = parser.parse_args()
    drain = drain_pika if args.client == "pika" else lambda a: asyncio.run(drain_aio(a))
    result = drain(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
