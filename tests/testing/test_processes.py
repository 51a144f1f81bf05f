"""The harness's supervised subprocesses: restart, kill, kill one child."""

import sys
import time

from portal.testing.processes import Supervised

# Starts a child and says so; both sleep.
SCRIPT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print('up', child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


class Sleeper(Supervised):
    ready_marker = "up "


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, predicate
        time.sleep(0.05)


def test_a_supervised_process_killed_with_its_group_is_started_again(tmp_path):
    process = Sleeper(
        [sys.executable, "-c", SCRIPT], {}, tmp_path / "p.log", supervise=True
    )
    with process:
        first = process.pid
        wait(lambda: process.children())
        child = process.children()[0]
        process.kill()
        process.wait_restarted(1)
        assert process.starts == 2
        assert process.pid != first
        wait(lambda: not _alive(child))  # the whole group went down
        assert process.log().count("up ") == 2
        assert process.log(since_start=True).count("up ") == 1
    assert not process.alive()


def test_kill_child_kills_one_child_and_not_the_parent(tmp_path):
    with Sleeper([sys.executable, "-c", SCRIPT], {}, tmp_path / "p.log") as process:
        wait(lambda: process.children())
        pid = process.kill_child()
        assert pid is not None
        wait(lambda: not _alive(pid))  # a zombie until its parent reaps it
        assert process.alive()
        assert process.starts == 1


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
