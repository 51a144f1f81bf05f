"""The lock files pin what pyproject.toml asks for, with hashes, and agree.

``make install`` and CI install requirements/dev.lock, the image
requirements/base.lock and ``make bench`` requirements/bench.lock; ``make
lock`` regenerates them. A range changed in pyproject.toml without ``make
lock`` fails here instead of installing something else than what was tested.
"""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$", re.MULTILINE)


def pins(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / f"{name}.lock").read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def requirements(*groups: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for group in groups:
        found += [Requirement(r) for r in project["optional-dependencies"][group]]
    return found


@pytest.mark.parametrize(
    ("lock", "groups"), [("base", ()), ("dev", ("dev",)), ("bench", ("dev", "bench"))]
)
def test_each_lock_pins_every_requirement_within_its_range(lock, groups):
    pinned = pins(lock)
    for requirement in requirements(*groups):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in requirements/{lock}.lock: make lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock}.lock pins {name}=={pinned[name]}, outside {requirement}: make lock"
        )


def test_the_locks_agree_on_every_shared_version():
    base, dev, bench = pins("base"), pins("dev"), pins("bench")
    assert {n: dev[n] for n in base} == base
    assert {n: bench[n] for n in dev} == dev


@pytest.mark.parametrize("lock", ["base", "dev", "bench"])
def test_every_pin_carries_hashes(lock):
    text = (ROOT / "requirements" / f"{lock}.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text.split("\n", 6)[-1])
    for entry in entries:
        if "==" in entry.split("\n", 1)[0]:
            assert "--hash=sha256:" in entry, entry.split("\n", 1)[0]
