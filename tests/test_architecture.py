"""Architecture checks: the messaging layer knows no app, and nothing in the
project imports in a circle."""

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "registrar", "feed", "accounts", "onboarding")
APPS = ("registrar", "feed", "accounts", "onboarding", "tests")
# The URL roots may name every app's views.
URL_ROOTS = {"portal.urls", "portal.api_urls"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def test_the_messaging_layer_imports_no_app():
    offenders = {}
    for module, path in _modules().items():
        if not module.startswith("portal") or module in URL_ROOTS:
            continue
        apps = {
            name
            for name in _imports(module, path, top_level_only=False)
            if name.split(".")[0] in APPS
        }
        if apps:
            offenders[module] = sorted(apps)
    assert offenders == {}


def test_no_import_cycles_between_the_projects_modules():
    """Counting imports inside functions too: a cycle hidden in a function
    is still two modules that cannot be understood one without the other."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name in _imports(module, path, top_level_only=False):
            # "from pkg import mod" names pkg.mod; keep what is a module. A
            # package's __init__ is not counted as importing its modules.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                graph[module].add(name)

    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_checks_see_an_import_of_an_app(tmp_path):
    """The import reader finds what the first check looks for."""
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from feed.models import FeedEvent\n")
    assert "feed.models" in _imports(
        "portal.messaging.probe", path, top_level_only=False
    )
    assert "feed.models" not in _imports(
        "portal.messaging.probe", path, top_level_only=True
    )


# A dotted module path under tests/ ("tests.faults.poison"), in code or in a
# string (a Celery app named on a command line, an app in PORTAL_EXTRA_APPS).
_TESTS_MODULE = re.compile(r"\btests\.[a-z_]")


def test_the_benchmarks_use_nothing_from_the_tests():
    """``bench/`` runs on the portal and its harness (``portal.testing``),
    never on the test suite's code: it must run where the tests are not."""
    offenders = {}
    for path in sorted((ROOT / "bench").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = {
            name
            for name in _imports(module, path, top_level_only=False)
            if name.split(".")[0] == "tests"
        }
        named = set(_TESTS_MODULE.findall(path.read_text()))
        if imported or named:
            offenders[str(path.relative_to(ROOT))] = sorted(imported | named)
    assert offenders == {}


def test_the_bench_check_sees_a_use_of_the_tests(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text('ARGS = ["-A", "tests.faults.poison"]\nfrom tests import helpers\n')
    assert "tests.helpers" in _imports("bench.probe", path, top_level_only=False)
    assert _TESTS_MODULE.findall(path.read_text())
