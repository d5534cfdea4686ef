"""Build the sample inputs of `eventfn dev --demo` into demo/inputs/ (deterministic, no downloads).

Each input comes from one builder registered with `@builder`; a builder returns the file's
bytes plus what the demo does with it:

- `upload`: the file is put into the embedded S3 data bucket under `key` (which the bucket
  notification carries to storage-source and on into the broker);
- `event`: the file is a structured-mode CloudEvent (JSON) published to the broker ingress.

`expect` lists the event types the input's chain must produce; `requires` the Services the
topology must run for that (an input whose Services are absent is skipped and says so).
`manifest.json` describes every input. `--check` exits 1 when demo/inputs/ is out of date.

    python demo/make_inputs.py            # (re)write demo/inputs/
    python demo/make_inputs.py --check    # is demo/inputs/ what the builders make?
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
DEFAULT_OUT = Path(__file__).resolve().parent / "inputs"


@dataclass(frozen=True)
class DemoInput:
    """One sample input and what the demo expects from it."""

    name: str
    kind: str  # "upload" | "event"
    file: str  # path under inputs/
    content: bytes
    description: str
    expect: tuple[str, ...]
    requires: tuple[str, ...] = ()
    key: str | None = None
    content_type: str | None = None

    def manifest_entry(self) -> dict[str, object]:
        """The input as described in manifest.json (without its bytes)."""
        entry: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "file": self.file,
            "description": self.description,
            "expect": list(self.expect),
            "requires": list(self.requires),
        }
        if self.key is not None:
            entry["key"] = self.key
        if self.content_type is not None:
            entry["content_type"] = self.content_type
        return entry


Builder = Callable[[], DemoInput]
BUILDERS: list[Builder] = []


def builder(func: Builder) -> Builder:
    """Register an input builder (inputs keep registration order)."""
    BUILDERS.append(func)
    return func


# -- the inputs --------------------------------------------------------------------------------


@builder
def welcome_note() -> DemoInput:
    """A small text document; its key has spaces and non-ASCII letters on purpose."""
    lines = [
        "Welcome to eventfn!",
        "",
        "This note was uploaded to the embedded S3 by `eventfn dev --demo`.",
        "The bucket notification reached storage-source as a MinIO webhook,",
        "which turned it into an eventfn.storage.object.created.v1 CloudEvent.",
        "Clés, accents et espaces survivent au voyage : l'été à Zürich.",
    ]
    return DemoInput(
        name="welcome-note",
        kind="upload",
        file="uploads/welcome-note.txt",
        content=("\n".join(lines) + "\n").encode(),
        description="a text document uploaded to s3://<data bucket>/documents/",
        expect=("eventfn.storage.object.created.v1",),
        requires=("storage-source",),
        key="documents/welcome note (été).txt",
        content_type="text/plain; charset=utf-8",
    )


@builder
def echo_hello() -> DemoInput:
    """An echo request published to the broker: echo replies and records it."""
    event = {
        "specversion": "1.0",
        "type": "eventfn.echo.requested.v1",
        "source": "/eventfn/demo",
        "id": "demo-echo-hello",
        "subject": "demo/echo-hello",
        "datacontenttype": "application/json",
        "data": {"message": "hello from the eventfn demo", "repeat": 2},
    }
    return DemoInput(
        name="echo-hello",
        kind="event",
        file="events/echo-hello.json",
        content=(json.dumps(event, indent=2, ensure_ascii=False) + "\n").encode(),
        description="an echo request published to the broker ingress",
        expect=(
            "eventfn.echo.requested.v1",
            "eventfn.echo.replied.v1",
            "eventfn.echo.recorded.v1",
        ),
        requires=("echo",),
    )


# -- inputs of the function families (demo/builders_<family>.py) --------------------------------

FAMILY_BUILDERS: dict[str, tuple[str, ...]] = {
    "builders_csv": ("sales_csv",),
    "builders_documents": ("quarterly_review_pdf", "customer_feedback_docx"),
    "builders_domain": ("order_in_stock", "order_short_of_stock"),
    "builders_ops": ("backup_job_report", "nginx_access_log"),
    "builders_users": ("user_created", "user_updated"),
    "builders_workflow": (
        "telemetry_readings",
        "order_workflow_shipped",
        "order_workflow_refunded",
    ),
}


def _register_families() -> None:
    """Add the builders of every family module (imported here: they import this module)."""
    import importlib

    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    sys.modules.setdefault("make_inputs", sys.modules[__name__])
    for module_name, names in FAMILY_BUILDERS.items():
        module = importlib.import_module(module_name)
        for name in names:
            make = getattr(module, name)
            if make not in BUILDERS:
                BUILDERS.append(make)


# -- writing -----------------------------------------------------------------------------------


def build() -> dict[str, bytes]:
    """Every file of inputs/ (relative path -> bytes), manifest.json included."""
    _register_families()
    inputs = [make() for make in BUILDERS]
    names = [item.name for item in inputs]
    if len(set(names)) != len(names):
        raise SystemExit(f"duplicate input names: {names}")
    files = {item.file: item.content for item in inputs}
    manifest = {"version": 1, "inputs": [item.manifest_entry() for item in inputs]}
    files[MANIFEST] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    return files


def drift(out: Path, files: dict[str, bytes]) -> list[str]:
    """Files of `out` that differ from `files` (missing, changed or extra)."""
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    changed = [
        name
        for name, content in files.items()
        if not (out / name).is_file() or (out / name).read_bytes() != content
    ]
    return sorted(set(changed) | (present - set(files)))


def write(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Write `files` under `out`, removing files no builder makes any more."""
    for stale in drift(out, files):
        if stale not in files:
            (out / stale).unlink()
    written = []
    for name, content in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="inputs directory")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is out of date")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        stale = drift(args.out, files) if args.out.is_dir() else sorted(files)
        for name in stale:
            print(f"{args.out / name} is out of date (run python demo/make_inputs.py)")
        return 1 if stale else 0
    for path in write(args.out, files):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
