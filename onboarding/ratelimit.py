"""A rate limit shared by every worker process: at most N calls in any one
second of the clock, counted in one ``RateWindow`` row.

One ``UPDATE … RETURNING`` per call takes a place in the current second;
past the limit the caller sleeps until the next second and tries again. The
row is locked only for that statement (autocommit), never across a call.
"""

import time

from django.db import IntegrityError, connection, transaction

from .models import RateWindow


def rate_limit_wait(name: str, per_second: int) -> float:
    """Block until a call under limiter ``name`` may be made; returns the
    seconds waited. ``per_second`` 0 (or less) means no limit."""
    if per_second <= 0:
        return 0.0
    table = connection.ops.quote_name(RateWindow._meta.db_table)
    waited = 0.0
    while True:
        now = time.time()
        second = int(now)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET count = CASE WHEN second = %s "
                "THEN count + 1 ELSE 1 END, second = %s WHERE name = %s "
                "RETURNING count",
                [second, second, name],
            )
            row = cursor.fetchone()
        if row is None:
            try:
                with transaction.atomic():
                    RateWindow.objects.create(name=name, second=0, count=0)
            except IntegrityError:
                pass  # another process created it first
            continue
        if row[0] <= per_second:
            return waited
        pause = second + 1 - now
        time.sleep(pause)
        waited += pause
