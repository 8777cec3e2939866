"""Start-up loads only what a command needs: `syndicate --version` and `--help`, `import syndicate`
and `import syndicate.config` leave the scheduler, the database, the email toolchain, the web
service and the HTTP clients unloaded. Each case runs in a fresh interpreter and reports the
modules it ended with; nothing is timed (benchmarks/bench_startup.py measures).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

import syndicate

from .conftest import REPO

# Third-party packages no start-up may load (top-level names as in sys.modules).
HEAVY = {
    "apscheduler",
    "cryptography",
    "css_inline",
    "cssutils",
    "dkim",
    "dns",
    "feedparser",
    "frontmatter",
    "jinja2",
    "lxml",
    "markdown_it",
    "mjml",
    "psycopg",
    "requests",
    "sqlalchemy",
    "starlette",
    "urllib3",
    "uvicorn",
    "watchfiles",
}
# Besides those, what the CLI itself must not load to print its version or help.
CLI_HEAVY = HEAVY | {"pydantic", "pydantic_core", "yaml", "regex"}

# Runs the CLI's own entry point on argv[1:] in this interpreter, then prints (last line) every
# loaded module of a top-level package in argv[1]'s set.
CLI_PROBE = """
import json, sys
heavy = set(json.loads(sys.argv[1]))
from syndicate.cli import cli
try:
    cli.main(sys.argv[2:], prog_name="syndicate")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""
IMPORT_PROBE = """
import importlib, json, sys
heavy = set(json.loads(sys.argv[1]))
importlib.import_module(sys.argv[2])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def loaded(probe: str, heavy: set[str], *args: str) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(sorted(heavy)), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["send", "--help"],
        ["subscribers", "list", "--help"],
        ["daemon", "--help"],
        ["dkim", "--help"],
    ],
    ids=" ".join,
)
def test_version_and_help_load_no_heavy_library(argv):
    assert loaded(CLI_PROBE, CLI_HEAVY, *argv) == []


@pytest.mark.parametrize("module", ["syndicate", "syndicate.config", "syndicate.cli", "syndicate.errors"])
def test_importing_loads_no_heavy_library(module):
    assert loaded(IMPORT_PROBE, HEAVY, module) == []


def test_the_package_names_what_type_checkers_see():
    """The names `__getattr__` imports on first use are the ones imported for type checkers."""
    tree = ast.parse((REPO / "syndicate" / "__init__.py").read_text(encoding="utf-8"))
    checked = {
        (node.module, alias.name)
        for block in tree.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    lazy = {(module, name) for module, names in syndicate._EXPORTS.items() for name in names}
    assert checked == lazy
    assert set(syndicate.__all__) == {name for _, name in lazy} | {"__version__"}
    assert set(syndicate.__all__) <= set(dir(syndicate))


def test_a_function_keeps_its_name_over_its_module():
    """`syndicate.send` is the function, also once the module `syndicate.send` is imported."""
    import syndicate.dispatch
    import syndicate.preview
    import syndicate.send  # noqa: F401

    assert callable(syndicate.send) and syndicate.send.__module__ == "syndicate.send"
    assert syndicate.preview.__module__ == "syndicate.preview" and callable(syndicate.preview)
    assert syndicate.dispatch.__module__ == "syndicate.dispatch" and callable(syndicate.dispatch)
    from syndicate import clock, send

    assert callable(send) and clock.now() is not None


def test_an_unknown_name_is_an_attribute_error():
    assert not hasattr(syndicate, "no_such_name")
    with pytest.raises(AttributeError, match="no_such_name"):
        syndicate.no_such_name  # noqa: B018
