"""hive.protocol stays sans-I/O: no event loop, sockets, clocks, randomness or files.

Every module's imports are parsed with ``ast`` (nothing is imported or executed), so a violation
is reported even in code paths no test reaches.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hive.protocol

PROTOCOL_DIR = Path(hive.protocol.__file__).parent

# Named by the assignment, plus modules that do I/O, spawn work or read clocks/entropy.
FORBIDDEN_MODULES = frozenset(
    {
        "trio",
        "socket",
        "asyncio",
        "time",
        "datetime",
        "random",
        "secrets",
        "os",
        "threading",
        "selectors",
        "ssl",
        "urllib",
        "http",
        "subprocess",
        "multiprocessing",
        "concurrent",
        "importlib",
        "sqlite3",
        "pathlib",
        "shutil",
        "tempfile",
        "signal",
        "uuid",
        "logging",
    }
)
# hive modules the protocol may use; anything else in hive could pull I/O in transitively.
ALLOWED_HIVE_MODULES = ("hive.protocol", "hive.errors")
FORBIDDEN_CALLS = frozenset({"open", "__import__", "eval", "exec", "input", "print", "breakpoint"})


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def violations(source: str, module: str) -> list[str]:
    """Every forbidden import or call in ``source`` (the module named ``module``)."""
    tree = ast.parse(source)
    package = module.rsplit(".", 1)[0]
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        imported: list[str] = []
        if isinstance(node, ast.Import):
            imported = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, package)
            imported = [base]
            if base == "hive":  # `from hive import node` imports hive.node
                imported = [f"hive.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"{module}:{line}: calls {node.func.id}()")
        for name in imported:
            top = name.split(".")[0]
            if top in FORBIDDEN_MODULES:
                found.append(f"{module}:{line}: imports {name}")
            elif top == "hive" and not any(
                name == allowed or name.startswith(allowed + ".")
                for allowed in ALLOWED_HIVE_MODULES
            ):
                found.append(f"{module}:{line}: imports {name} (outside hive.protocol)")
    return found


def _modules() -> list[Path]:
    return sorted(PROTOCOL_DIR.rglob("*.py"))


def test_protocol_modules_are_found() -> None:
    names = {path.relative_to(PROTOCOL_DIR).as_posix() for path in _modules()}
    expected = {"wire/cbor.py", "wire/codec.py", "wire/facade.py", "messages.py", "gossip/state.py"}
    assert expected | {"membership/__init__.py", "membership/roster.py"} <= names


@pytest.mark.parametrize(
    "path", _modules(), ids=lambda path: path.relative_to(PROTOCOL_DIR).as_posix()
)
def test_module_is_sans_io(path: Path) -> None:
    relative = path.relative_to(PROTOCOL_DIR.parent.parent).with_suffix("")
    module = ".".join(relative.parts)
    found = violations(path.read_text(encoding="utf-8"), module)
    assert not found, "sans-I/O rule broken:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import trio\n", "hive.protocol.x:1: imports trio"),
        ("import os.path\n", "hive.protocol.x:1: imports os.path"),
        ("from time import monotonic\n", "hive.protocol.x:1: imports time"),
        ("x = 1\nfrom datetime import datetime as d\n", "hive.protocol.x:2: imports datetime"),
        ("def f():\n    import random\n", "hive.protocol.x:2: imports random"),
        ("from hive.node import port\n", "imports hive.node (outside hive.protocol)"),
        ("from hive import runtime\n", "imports hive.runtime (outside hive.protocol)"),
        ("from ..actors import transport\n", "imports hive.actors (outside hive.protocol)"),
        ("open('f')\n", "hive.protocol.x:1: calls open()"),
        ("__import__('socket')\n", "calls __import__()"),
    ],
)
def test_checker_catches_violations(source: str, expected: str) -> None:
    found = violations(source, "hive.protocol.x")
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    "source",
    [
        "import attrs\nimport nacl.signing\n",
        "from . import cbor\nfrom .errors import ProtocolError\n",
        "from hive.errors import HiveError\nfrom hive.protocol.wire.cbor import encode\n",
        "import hashlib\nimport struct\n",
    ],
)
def test_checker_allows_pure_imports(source: str) -> None:
    assert violations(source, "hive.protocol.x") == []
