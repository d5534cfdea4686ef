"""Compatibility of the event catalog between two versions (`eventfn schemas check`).

Events are read by consumers that upgrade at their own pace, so a schema change must be
compatible both ways: consumers on the old schema must accept data written with the new one and
vice versa. Additions that old readers can ignore (an optional field, a wider enum, a new type or
version) are reported as information; anything else about a type that already exists is breaking.
A breaking change gets a new version instead: `eventfn.x.created.v2` next to `.v1`.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventfn._errors import ConfigurationError
from eventfn._schemas import SchemaFile, SchemaRegistry, read_schema_file, schema_paths

_ANNOTATIONS = ("title", "description", "$comment", "examples", "default", "deprecated", "$id")
_LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
_OPAQUE = (
    "$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "prefixItems", "contains",
    "patternProperties", "propertyNames", "dependentRequired", "dependentSchemas",
    "unevaluatedProperties", "unevaluatedItems",
)  # fmt: skip
_CONSTRAINTS = ("format", "pattern", "multipleOf", "uniqueItems")
_GIT_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Finding:
    """One difference between two versions of an event type's schema."""

    event_type: str
    path: str
    message: str
    breaking: bool


class _Report:
    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        self.findings: list[Finding] = []

    def breaking(self, path: str, message: str) -> None:
        self.findings.append(Finding(self.event_type, path, message, True))

    def info(self, path: str, message: str) -> None:
        self.findings.append(Finding(self.event_type, path, message, False))


def compare_directories(old: Path, new: Path) -> list[Finding]:
    """Findings for every schema file of `old` and `new` (both must hold valid schema files)."""
    before = {f.event_type: f for f in map(read_schema_file, schema_paths(old))}
    after = {f.event_type: f for f in map(read_schema_file, schema_paths(new))}
    findings: list[Finding] = []
    for event_type in sorted(before.keys() | after.keys()):
        if event_type not in after:
            message = "schema file removed: consumers of this event type lose their contract"
            findings.append(Finding(event_type, "$", message, True))
        elif event_type not in before:
            findings.append(Finding(event_type, "$", "new event type or version", False))
        else:
            findings.extend(_compare_files(before[event_type], after[event_type]))
    return findings


def _compare_files(old: SchemaFile, new: SchemaFile) -> list[Finding]:
    if old.kind != new.kind:
        message = f"schema format changed from {old.kind} to {new.kind}"
        return [Finding(old.event_type, "$", message, True)]
    if old.kind == "avro":
        return compare_avro_schemas(old.event_type, old.document, new.document)
    return compare_schemas(old.event_type, old.document, new.document)


def compare_schemas(event_type: str, old: dict[str, Any], new: dict[str, Any]) -> list[Finding]:
    """Findings between two JSON Schemas of one event type, recursing into properties/items."""
    report = _Report(event_type)
    _compare_node(report, "$", old, new)
    return report.findings


def _as_schema(node: Any) -> dict[str, Any]:
    """A boolean schema as the equivalent object schema (`true` = {}, `false` = not anything)."""
    if node is True or node is None:
        return {}
    if node is False:
        return {"not": {}}
    return dict(node)


def _compare_node(report: _Report, path: str, old_node: Any, new_node: Any) -> None:
    old, new = _as_schema(old_node), _as_schema(new_node)
    if old == new:
        return
    for keyword in _ANNOTATIONS:
        if old.get(keyword) != new.get(keyword):
            report.info(path, f"'{keyword}' changed")
    _compare_type(report, path, old, new)
    _compare_enum(report, path, old, new)
    _compare_bounds(report, path, old, new)
    for keyword in _CONSTRAINTS:
        if old.get(keyword) != new.get(keyword):
            if keyword in new:
                report.breaking(path, f"'{keyword}' changed to {json.dumps(new[keyword])}")
            else:
                report.info(path, f"'{keyword}' constraint removed")
    for keyword in _OPAQUE:
        if old.get(keyword) != new.get(keyword):
            report.breaking(path, f"'{keyword}' changed; compatibility cannot be verified")
    _compare_object(report, path, old, new)
    if "items" in old or "items" in new:
        _compare_node(report, f"{path}[*]", old.get("items"), new.get("items"))
    for name in sorted(old.get("$defs", {}).keys() | new.get("$defs", {}).keys()):
        before, after = old.get("$defs", {}).get(name), new.get("$defs", {}).get(name)
        _compare_node(report, f"#/$defs/{name}", before, after)


def _types(node: dict[str, Any]) -> frozenset[str] | None:
    value = node.get("type")
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


def _compare_type(report: _Report, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    before, after = _types(old), _types(new)
    if before != after:
        shown = [("any" if t is None else "|".join(sorted(t))) for t in (before, after)]
        report.breaking(path, f"type changed from {shown[0]} to {shown[1]}")


def _allowed_values(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _compare_enum(report: _Report, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    before, after = _allowed_values(old), _allowed_values(new)
    if before == after:
        return
    if after is None:
        report.info(path, "enum removed: any value of the type is now allowed")
    elif before is None:
        report.breaking(path, "values restricted to an enum")
    else:
        removed = [v for v in before if v not in after]
        added = [v for v in after if v not in before]
        if removed:
            report.breaking(path, f"enum narrowed: {_show(removed)} no longer allowed")
        if added:
            report.info(path, f"enum widened: {_show(added)} added")


def _show(values: list[Any]) -> str:
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)


def _compare_bounds(report: _Report, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    for keyword in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
        before: Any = old.get(keyword)
        after: Any = new.get(keyword)
        if before == after:
            continue
        if after is not None and (
            before is None or (after > before if keyword in _LOWER_BOUNDS else after < before)
        ):
            report.breaking(path, f"'{keyword}' narrowed from {before} to {after}")
        else:
            report.info(path, f"'{keyword}' relaxed from {before} to {after}")


def _compare_object(report: _Report, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    old_extra = old.get("additionalProperties", True)
    new_extra = new.get("additionalProperties", True)
    for name in sorted(old_props.keys() | new_props.keys() | old_req | new_req):
        child = _child(path, name)
        was, now = name in old_props or name in old_req, name in new_props or name in new_req
        if was and not now:
            _field_removed(report, child, name in old_req, new_extra is not False)
        elif now and not was:
            _field_added(report, child, name in new_req, old_extra is not False)
        else:
            if name in old_req and name not in new_req:
                report.breaking(child, "field is no longer required")
            elif name in new_req and name not in old_req:
                report.breaking(child, "field became required")
            _compare_node(report, child, old_props.get(name), new_props.get(name))
    if old_extra is not False and new_extra is False:
        report.breaking(path, "additional properties are no longer allowed")
    elif old_extra is False and new_extra is not False:
        report.info(path, "additional properties are now allowed")
    elif old_extra is not False:
        _compare_node(report, f"{path}.*", old_extra, new_extra)


def _field_removed(report: _Report, path: str, required: bool, extra_allowed: bool) -> None:
    if required:
        report.breaking(path, "required field removed")
    elif not extra_allowed:
        report.breaking(path, "field removed while additional properties are forbidden")
    else:
        report.info(path, "optional field removed")


def _field_added(report: _Report, path: str, required: bool, extra_allowed: bool) -> None:
    if required:
        report.breaking(path, "new required field")
    elif not extra_allowed:
        report.breaking(path, "field added but the old schema forbids extra properties")
    else:
        report.info(path, "optional field added")


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if _NAME.match(name) else f"{path}[{json.dumps(name)}]"


def compare_avro_schemas(event_type: str, old: Any, new: Any) -> list[Finding]:
    """Findings between two Avro schemas of one event type (fields compared by name)."""
    report = _Report(event_type)
    _compare_avro(report, "$", old, new)
    return report.findings


def _avro_shape(node: Any) -> Any:
    """The type without documentation, with `{"type": "string"}` reduced to `"string"`."""
    if isinstance(node, list):
        return [_avro_shape(branch) for branch in node]
    if not isinstance(node, dict):
        return node
    shape = {k: _avro_shape(v) for k, v in node.items() if k != "doc"}
    return shape["type"] if list(shape) == ["type"] else shape


def _compare_avro(report: _Report, path: str, old_node: Any, new_node: Any) -> None:
    old, new = _avro_shape(old_node), _avro_shape(new_node)
    if old == new:
        return
    kinds = {n.get("type") if isinstance(n, dict) else None for n in (old, new)}
    if len(kinds) == 1 and kinds <= {"record", "array", "map", "enum"}:
        kind = kinds.pop()
        if kind == "record":
            _compare_avro_record(report, path, old, new)
        elif kind == "array":
            _compare_avro(report, f"{path}[*]", old["items"], new["items"])
        elif kind == "map":
            _compare_avro(report, f"{path}.*", old["values"], new["values"])
        else:
            _compare_enum(report, path, {"enum": old["symbols"]}, {"enum": new["symbols"]})
        return
    report.breaking(path, f"type changed from {json.dumps(old)} to {json.dumps(new)}")


def _compare_avro_record(
    report: _Report, path: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    for key in ("name", "namespace"):
        if old.get(key) != new.get(key):
            report.breaking(path, f"record {key} changed from {old.get(key)} to {new.get(key)}")
    before = {f["name"]: f for f in old.get("fields", [])}
    after = {f["name"]: f for f in new.get("fields", [])}
    for name in sorted(before.keys() | after.keys()):
        child = _child(path, name)
        if name not in after:
            if "default" in before[name]:
                report.info(child, "field with a default removed")
            else:
                report.breaking(child, "field without a default removed")
        elif name not in before:
            if "default" in after[name]:
                report.info(child, "field with a default added")
            else:
                report.breaking(child, "field without a default added")
        else:
            if before[name].get("default") != after[name].get("default"):
                report.info(child, "default changed")
            _compare_avro(report, child, before[name]["type"], after[name]["type"])


def load_git_tree(ref: str, subdir: str, repo: Path) -> Path | None:
    """`subdir` (relative to `repo`, or absolute) at git `ref`, extracted into a new temporary
    directory; None when there is no such ref, repository or directory at that ref.

    Only the schema files directly inside `subdir` are extracted. The caller removes the
    returned directory (`shutil.rmtree`).
    """
    if not ref or ref.startswith("-"):
        return None
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    root = Path(top.decode().strip()).resolve()
    try:
        path = (repo / subdir).resolve().relative_to(root).as_posix()
    except ValueError:
        return None
    archive = _git(root, "archive", "--format=tar", f"{ref}:{'' if path == '.' else path}")
    if archive is None:
        return None
    target = Path(tempfile.mkdtemp(prefix="eventfn-schemas-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            if member.isfile() and len(name.parts) == 1 and name.suffix in (".json", ".avsc"):
                source = tar.extractfile(member)
                if source is not None:
                    (target / name.name).write_bytes(source.read())
    return target


def _git(repo: Path, *args: str) -> bytes | None:
    """stdout of a git command in `repo`, or None when git is missing or the command fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            check=False,
            timeout=_GIT_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def check_command(schemas_dir: Path, against: Path | None) -> tuple[int, str]:
    """`eventfn schemas check`: (exit code, report). 0 = valid and compatible, 1 = problems,
    2 = a directory is missing."""
    if not schemas_dir.is_dir():
        return 2, f"error: schema directory {schemas_dir} does not exist"
    if against is not None and not against.is_dir():
        return 2, f"error: baseline directory {against} does not exist"
    paths = schema_paths(schemas_dir)
    lines: list[str] = []
    for path in paths:
        try:
            read_schema_file(path)
        except ConfigurationError as error:
            lines.append(f"INVALID  {error}")
    if not lines:
        try:
            SchemaRegistry.from_directory(schemas_dir)
        except ConfigurationError as error:
            lines.append(f"INVALID  {error}")
    if lines:
        return 1, "\n".join([*lines, f"{len(lines)} problem(s) in {schemas_dir}"])
    lines.append(f"ok: {len(paths)} schema file(s) in {schemas_dir} are valid")
    if against is None:
        return 0, "\n".join(lines)
    try:
        findings = compare_directories(against, schemas_dir)
    except ConfigurationError as error:
        return 1, "\n".join([*lines, f"INVALID  baseline {error}"])
    for finding in findings:
        label = "BREAKING" if finding.breaking else "info    "
        lines.append(f"{label} {finding.event_type} {finding.path}: {finding.message}")
    breaking = sum(finding.breaking for finding in findings)
    lines.append(f"{breaking} breaking change(s) against {against}")
    return (1 if breaking else 0), "\n".join(lines)
