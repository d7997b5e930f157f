"""hive.governance holds the engine's pure rules: no event loop, sockets, clocks, files or HTTP.

Imports are parsed with ``ast``, as for hive.protocol (tests/protocol/test_purity.py).
``random`` may be imported for the ``random.Random`` type a caller passes in (the demo
proposer); ``urllib.parse`` only parses option URLs; imports under ``if TYPE_CHECKING:`` are
type hints and never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hive.governance

DIR = Path(hive.governance.__file__).parent
FORBIDDEN = frozenset(
    {
        "trio",
        "socket",
        "asyncio",
        "time",
        "datetime",
        "os",
        "threading",
        "sqlite3",
        "httpx",
        "http",
        "ssl",
        "subprocess",
        "pathlib",
        "shutil",
        "tempfile",
        "signal",
        "secrets",
        "anyio",
        "urllib.request",
    }
)
# The only hive modules the rules may import: themselves, the config records and the node
# port's value types.
ALLOWED_HIVE = ("hive.governance", "hive.config", "hive.node.port")


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (type hints only, never run)."""
    out: list[ast.AST] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        out.append(node)
        out.extend(_runtime_nodes(node))
    return out


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(DIR.glob("*.py")), ids=lambda p: p.name)
def test_governance_module_is_pure(path: Path) -> None:
    for name in _imports(path):
        root = name.split(".")[0]
        assert name not in FORBIDDEN, f"{path.name} imports {name}"
        assert root not in FORBIDDEN, f"{path.name} imports {name}"
        if root == "hive":
            assert name.startswith(ALLOWED_HIVE), f"{path.name} imports {name}"
        if name.startswith("urllib"):
            assert name == "urllib.parse", f"{path.name} imports {name}"
