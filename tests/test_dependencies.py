"""The installed dependencies are the ones the project supports (issue 13 item 14): one
distribution provides the ``coincurve`` module, and pyln-* belong to the Core Lightning
release line the README names."""

from __future__ import annotations

from importlib import metadata

SUPPORTED_CLN_LINE = (25, 12)  # README: "Supported Core Lightning releases"


def providers(module: str) -> list[str]:
    """Installed distributions that ship ``module/__init__.py``."""
    found = []
    for dist in metadata.distributions():
        files = dist.files or ()
        if any(str(f).replace("\\", "/") == f"{module}/__init__.py" for f in files):
            found.append(dist.metadata["Name"])
    return sorted(found)


def test_one_distribution_provides_coincurve() -> None:
    assert providers("coincurve") == ["coincurve"]


def test_pyln_matches_the_supported_release_line() -> None:
    for name in ("pyln-client", "pyln-proto"):
        major, minor = (int(part) for part in metadata.version(name).split(".")[:2])
        assert (major, minor) == SUPPORTED_CLN_LINE, (name, metadata.version(name))


def test_signatures_work_with_the_installed_coincurve() -> None:
    from hive.protocol import lnsig

    secret = bytes(31) + b"\x01"
    text = "hive dependency check"
    node_id = lnsig.node_id_from_secret(secret)
    zbase = lnsig.sign_message(secret, text)
    assert lnsig.check_message(text, zbase, node_id)
