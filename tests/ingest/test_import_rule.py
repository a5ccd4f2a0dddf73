"""The agent stays a separate, small install: it never imports the service, and needs only the stdlib and
``cryptography``.

Rule: ``ingest/`` talks to cctv-gov over HTTP only, so no module under it may import ``cctv_gov`` by any
route (import, from-import, relative imports that climb out of the agent's package, importlib or
``__import__``). Its runtime dependencies are the Python standard library plus ``cryptography`` (AES-GCM
for the cgv-stream-1 encryption, which the standard library does not have): ``dependencies`` in
ingest/pyproject.toml and the agent's imports must stay within ALLOWED_RUNTIME_DEPENDENCIES. Adding a
package to it is a decision to ship and patch that package on every NVR box, and belongs in review.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import cctv_ingest
import pytest

INGEST = Path(__file__).resolve().parents[2] / "ingest"
ALLOWED_RUNTIME_DEPENDENCIES: frozenset[str] = frozenset({"cryptography"})
FORBIDDEN = "cctv_gov"
_FORBIDDEN_NAME = re.compile(rf"{FORBIDDEN}(\.|$)")
_DYNAMIC_IMPORTERS = {"import_module", "__import__", "find_spec", "spec_from_file_location"}
_SKIPPED_DIRS = {"build", "dist", "__pycache__", ".venv", "venv"}


def agent_sources() -> Iterator[Path]:
    for path in sorted(INGEST.rglob("*.py")):
        parts = path.relative_to(INGEST).parts
        if not any(part in _SKIPPED_DIRS or part.endswith(".egg-info") for part in parts[:-1]):
            yield path


def package_of(path: Path) -> list[str]:
    """The package a module under ingest/ belongs to, for resolving its relative imports."""
    parts = list(path.relative_to(INGEST).with_suffix("").parts)
    return parts[:-1]  # for __init__.py too: its package is the folder it is in


def violations(source: str, package: list[str]) -> list[str]:
    """Every way ``source`` reaches cctv_gov (or could, without a literal name), as readable lines."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}" for a in node.names if _FORBIDDEN_NAME.match(a.name)
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0:
                if _FORBIDDEN_NAME.match(module):
                    found.append(f"line {node.lineno}: from {module} import ...")
            elif node.level > len(package):
                found.append(f"line {node.lineno}: relative import climbs out of the agent's package")
            if any(_FORBIDDEN_NAME.match(alias.name) for alias in node.names):
                found.append(f"line {node.lineno}: imports a name {FORBIDDEN}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _FORBIDDEN_NAME.match(node.value):
                found.append(f"line {node.lineno}: string {node.value!r} names the service's package")
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            if name in _DYNAMIC_IMPORTERS:
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    found.append(f"line {node.lineno}: {name}() with a computed module name")
    return found


def test_the_agent_has_sources_to_check() -> None:
    names = {path.relative_to(INGEST).as_posix() for path in agent_sources()}

    assert {
        "cctv_ingest/__init__.py",
        "cctv_ingest/config.py",
        "cctv_ingest/client.py",
        "cctv_ingest/cli.py",
        "cctv_ingest/stream.py",
        "cctv_ingest/spool.py",
        "cctv_ingest/scanner.py",
        "cctv_ingest/uploader.py",
        "cctv_ingest/runner.py",
    } <= names


@pytest.mark.parametrize("path", list(agent_sources()), ids=lambda p: p.relative_to(INGEST).as_posix())
def test_no_agent_module_reaches_the_service_package(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), package_of(path)) == []


@pytest.mark.parametrize("path", list(agent_sources()), ids=lambda p: p.relative_to(INGEST).as_posix())
def test_agent_modules_import_only_the_standard_library_and_allowed_packages(path: Path) -> None:
    allowed = sys.stdlib_module_names | {"cctv_ingest"} | ALLOWED_RUNTIME_DEPENDENCIES
    outside: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        outside += [n for n in names if n.split(".")[0] not in allowed]

    assert outside == []


BAD_SOURCES = [
    "import cctv_gov",
    "import cctv_gov.config as settings",
    "import os, cctv_gov.db",
    "from cctv_gov import app",
    "from cctv_gov.kit.clock import Clock",
    "from .. import cctv_gov",
    "from ...cctv_gov import config",
    "import importlib\nimportlib.import_module('cctv_gov.app')",
    "from importlib import import_module\nimport_module('cctv_gov')",
    "__import__('cctv_gov')",
    "import importlib\nimportlib.import_module('cctv' + '_gov')",
    "name = 'cctv_gov.models'",
]


@pytest.mark.parametrize("source", BAD_SOURCES)
def test_the_rule_catches_each_route_to_the_service(source: str) -> None:
    assert violations(source, ["cctv_ingest"]) != []


@pytest.mark.parametrize(
    "source",
    [
        "import json\nfrom cctv_ingest.config import load_config",
        "from . import config\nfrom .client import ServiceClient",
        "import importlib\nimportlib.import_module('json')",
        '"""This agent never imports cctv_gov."""',
        "import cctv_governance_tools_are_not_ours",
    ],
)
def test_the_rule_allows_what_the_agent_does(source: str) -> None:
    assert violations(source, ["cctv_ingest"]) == []


def test_runtime_dependencies_stay_within_the_allow_list() -> None:
    project = tomllib.loads((INGEST / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert "dependencies" not in project.get("dynamic", [])
    names = {
        re.split(r"[\s<>=!~;\[(@]", requirement, maxsplit=1)[0].lower()
        for requirement in project["dependencies"]
    }
    assert names <= ALLOWED_RUNTIME_DEPENDENCIES
    # Extras are runtime dependencies by another name.
    assert not project.get("optional-dependencies")


def test_package_metadata_matches_the_code() -> None:
    project = tomllib.loads((INGEST / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert project["name"] == "cctv-ingest"
    assert project["version"] == cctv_ingest.__version__
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"] == {"cctv-ingest": "cctv_ingest.cli:main"}
