"""CSV -> Parquet: csv-ingest's converter against pyarrow's own loop and the pandas approach.

One generated CSV (default 1 GB, about 10M rows of ints, floats, quoted strings with commas,
quotes and a few newlines, dates, timestamps and booleans) is converted by each target, EACH IN
A FRESH PROCESS; throughput is input MB/s, memory is the child's peak RSS (`ru_maxrss` from
`os.wait4`, so the whole process is counted, interpreter and imports included):

- `csv-ingest`: the function's core converter (`functions/csv-ingest/converter.py`) called
  directly on local files, no S3: sniffing, the UTF-8 check, the added columns, row groups;
- `pyarrow` (the limit): `pyarrow.csv.open_csv` -> `ParquetWriter.write_batch` per batch, with
  pyarrow's defaults plus `newlines_in_values=True` (the data has quoted newlines);
- `pandas` / `pandas2` (the article's approach): `pandas.read_csv` of the whole file ->
  `pyarrow.Table.from_pandas` -> `pyarrow.parquet.write_table`, with pandas 3.x
  (pyarrow-backed strings) and pandas 2.x (object strings, the article's era), each from its
  own venv made by bench/setup_csv_bench.sh (a target whose venv is absent is skipped).

The CSV is generated once per size into --workdir (default: <tmp>/eventfn-bench-csv) with
pyarrow's CSV writer and reused by later runs. Targets: csv-ingest >= 0.8x pyarrow's
throughput, >= 4x the pandas approach's, peak RSS <= 300 MB. `CPU s` (user + system of the
child) is printed too: on a shared machine it moves less than wall time. Results also go to
bench/results/csv_ingest-<UTC timestamp>.json. The exit code ignores the targets.

    bash bench/setup_csv_bench.sh                           # once, for the pandas target
    .venv/bin/python bench/csv_ingest.py                    # 1 GB
    .venv/bin/python bench/csv_ingest.py --size 200MB --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHONS = {  # targets run by another interpreter (made by bench/setup_csv_bench.sh)
    "pandas": HERE / ".venvs" / "pandas" / "bin" / "python",
    "pandas2": HERE / ".venvs" / "pandas2" / "bin" / "python",
}
TARGETS = ("csv-ingest", "pyarrow", "pandas", "pandas2")
GOALS = {"vs_pyarrow": 0.8, "vs_pandas2": 4.0, "vs_pandas": 4.0, "rss_mb": 300.0}
MB = 1_000_000
MiB = 1024 * 1024
BASE_ROWS = 100_000


@dataclass
class Run:
    """One conversion in one fresh process."""

    target: str
    seconds: float
    rows: int
    bytes_out: int
    peak_rss_mb: float  # ru_maxrss of the child (os.wait4)
    vmhwm_mb: float  # the child's own VmHWM, reported by itself
    mb_per_s: float
    cpu_seconds: float  # user + system of the child: less sensitive to a busy machine


# -- the input ------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    """`1GB`, `200MB`, `512MiB` or a number of bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]i?[bB])?\s*", text)
    if not found:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
    return int(float(found.group(1)) * units.get((found.group(2) or "").lower(), 1))


def base_table() -> Any:
    """100k deterministic rows of mixed types (seeded; no clock, no downloads)."""
    import datetime as dt
    import random

    import pyarrow as pa

    rng = random.Random(20261128)
    names = ["Acme, Inc.", 'The "Best" Shop', "Zürich GmbH", "O'Brien & Sons", "multi\nline"]
    day0, t0 = dt.date(2026, 1, 1), dt.datetime(2026, 1, 1)
    rows = range(BASE_ROWS)
    return pa.table(
        {
            "order_id": pa.array(rows, pa.int64()),
            "order_date": pa.array([day0 + dt.timedelta(rng.randrange(365)) for _ in rows]),
            "customer": [
                rng.choice(names) if rng.random() < 0.2 else f"customer {rng.randrange(10**6)}"
                for _ in rows
            ],
            "amount": [round(rng.uniform(0, 10_000), 2) for _ in rows],
            "quantity": pa.array([rng.randrange(1, 100) for _ in rows], pa.int64()),
            "sku": [f"SKU-{rng.randrange(10**5):05d}" for _ in rows],
            "shipped_at": pa.array(
                [t0 + dt.timedelta(seconds=rng.randrange(10**7)) for _ in rows], pa.timestamp("s")
            ),
            "discount": [rng.random() for _ in rows],
            "express": [rng.random() < 0.3 for _ in rows],
        }
    )


def ensure_csv(workdir: Path, size: int, timeout: float) -> Path:
    """The input CSV of `size` bytes (at least), generated once (in a child) and reused.

    This process never imports pyarrow: Linux carries a process's peak RSS over to the
    children it spawns (ru_maxrss survives execve), so the parent must stay small for the
    children's ru_maxrss to be their own.
    """
    path = workdir / f"orders-{size}.csv"
    if not (path.is_file() and path.with_suffix(".done").is_file()):
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--generate",
            str(path),
            str(size),
        ]
        subprocess.run(command, check=True, timeout=timeout)
    return path


def generate(path: Path, size: int) -> None:
    """Write the CSV with pyarrow's CSV writer: the 100k base rows, shifted chunk by chunk."""
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    path.parent.mkdir(parents=True, exist_ok=True)
    done = path.with_suffix(".done")
    started = time.perf_counter()
    table = base_table()
    with path.open("wb") as out:
        writer = pacsv.CSVWriter(out, table.schema)
        chunk = 0
        while out.tell() < size:  # each chunk: new ids, amounts shifted, rows rotated
            shift = (chunk * 7919) % BASE_ROWS
            rotated = table.slice(shift).to_batches() + table.slice(0, shift).to_batches()
            for batch in rotated:
                ids = pc.add(batch.column(0), chunk * BASE_ROWS)
                amounts = pc.round(pc.add(batch.column(3), (chunk % 100) / 100), 2)
                writer.write_batch(
                    batch.set_column(0, "order_id", ids).set_column(3, "amount", amounts)
                )
            chunk += 1
        writer.close()
    done.write_text(str(chunk * BASE_ROWS))
    print(
        f"generated {path} ({path.stat().st_size / MB:.0f} MB, {chunk * BASE_ROWS} rows) "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )


# -- the children -----------------------------------------------------------------------------


def child_csv_ingest(source: Path, output: Path) -> int:
    import datetime as dt
    import importlib

    from eventfn._loader import load_function, module_name

    load_function("csv-ingest", ROOT / "functions")
    converter = importlib.import_module(f"{module_name('csv-ingest')}.converter")
    settings = converter.ConvertSettings(
        source_file=f"s3://bench/raw/{source.name}",
        processed_at=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
    )
    with output.open("w+b") as sink, tempfile.TemporaryFile() as quarantine:
        result = converter.convert(lambda: source.open("rb"), sink, quarantine, settings)
    return int(result.rows)


def child_pyarrow(source: Path, output: Path) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parse = pacsv.ParseOptions(newlines_in_values=True)
    reader = pacsv.open_csv(str(source), parse_options=parse)
    rows = 0
    with pq.ParquetWriter(str(output), reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def child_pandas(source: Path, output: Path) -> int:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.read_csv(source)
    table = pa.Table.from_pandas(frame)
    pq.write_table(table, str(output))
    return int(table.num_rows)


CHILDREN = {
    "csv-ingest": child_csv_ingest,
    "pyarrow": child_pyarrow,
    "pandas": child_pandas,
    "pandas2": child_pandas,
}


def run_child(target: str, source: Path, output: Path, timeout: float) -> Run | None:
    """Run one conversion in a fresh process; None when it failed or timed out."""
    python = str(PYTHONS.get(target, sys.executable))
    command = [python, str(Path(__file__).resolve()), "--child", target, str(source), str(output)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    timer = threading.Timer(timeout, lambda: os.kill(process.pid, signal.SIGKILL))
    timer.start()
    try:
        assert process.stdout is not None and process.stderr is not None
        out, err = process.stdout.read(), process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        timer.cancel()
    if process.returncode != 0:
        print(f"{target}: failed ({process.returncode}): {err.decode()[-2000:]}", file=sys.stderr)
        return None
    report = json.loads(out)
    size = source.stat().st_size
    return Run(
        target=target,
        seconds=report["seconds"],
        rows=report["rows"],
        bytes_out=output.stat().st_size,
        peak_rss_mb=usage.ru_maxrss * 1024 / MB,  # Linux: KiB
        vmhwm_mb=report["vmhwm_mb"],
        mb_per_s=size / MB / report["seconds"],
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )


def own_peak_mb() -> float:
    """VmHWM: this process's peak RSS (a cross-check of the parent's ru_maxrss)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    return int(status.split("VmHWM:")[1].split()[0]) * 1024 / MB


def child_main(target: str, source: Path, output: Path) -> None:
    started = time.perf_counter()
    rows = CHILDREN[target](source, output)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": rows, "vmhwm_mb": own_peak_mb()}))


# -- the report -------------------------------------------------------------------------------


def summarize(runs: list[Run]) -> dict[str, dict[str, float]]:
    """Median throughput, seconds and peak RSS per target."""
    summary: dict[str, dict[str, float]] = {}
    for target in TARGETS:
        mine = [run for run in runs if run.target == target]
        if mine:
            summary[target] = {
                "mb_per_s": statistics.median(run.mb_per_s for run in mine),
                "seconds": statistics.median(run.seconds for run in mine),
                "peak_rss_mb": max(run.peak_rss_mb for run in mine),
                "cpu_seconds": statistics.median(run.cpu_seconds for run in mine),
                "rows": mine[0].rows,
                "bytes_out": mine[0].bytes_out,
            }
    return summary


def report(summary: dict[str, dict[str, float]], size: int) -> dict[str, Any]:
    """Print the table and the targets; returns the ratios."""
    print(f"\nCSV -> Parquet, {size / MB:.0f} MB input, median of the rounds, peak = max")
    print(
        f"{'target':<12}{'MB/s':>9}{'seconds':>10}{'CPU s':>8}{'peak RSS MB':>13}"
        f"{'rows':>12}{'out MB':>9}"
    )
    for target, row in summary.items():
        print(
            f"{target:<12}{row['mb_per_s']:>9.1f}{row['seconds']:>10.2f}{row['cpu_seconds']:>8.2f}"
            f"{row['peak_rss_mb']:>13.0f}{int(row['rows']):>12}{row['bytes_out'] / MB:>9.1f}"
        )
    mine = summary.get("csv-ingest")
    ratios: dict[str, Any] = {}
    if mine is None:
        return ratios
    for peer in ("pyarrow", "pandas", "pandas2"):
        if peer in summary:
            ratios[f"vs_{peer}"] = mine["mb_per_s"] / summary[peer]["mb_per_s"]
            ratios[f"rss_vs_{peer}"] = mine["peak_rss_mb"] / summary[peer]["peak_rss_mb"]
            ratios[f"cpu_vs_{peer}"] = summary[peer]["cpu_seconds"] / mine["cpu_seconds"]
    ratios["rss_mb"] = mine["peak_rss_mb"]
    print("\ncsv-ingest:")
    for name, goal in GOALS.items():
        if name in ratios:
            value = ratios[name]
            ok = value <= goal if name == "rss_mb" else value >= goal
            sign = "<=" if name == "rss_mb" else ">="
            print(f"  {name:<14} {value:8.2f}  (target {sign} {goal})  {'PASS' if ok else 'FAIL'}")
    for name in sorted(ratios):
        if name.startswith(("cpu_", "rss_vs")):
            print(f"  {name:<14} {ratios[name]:8.2f}")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"), help="e.g. 200MB")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (targets interleaved)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    default_workdir = Path(tempfile.gettempdir()) / "eventfn-bench-csv"
    parser.add_argument("--workdir", type=Path, default=default_workdir, help="input cache")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per conversion")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # TARGET CSV PARQUET
    parser.add_argument("--generate", nargs=2, help=argparse.SUPPRESS)  # CSV SIZE
    args = parser.parse_args(argv)
    if args.generate:
        generate(Path(args.generate[0]), int(args.generate[1]))
        return 0
    if args.child:
        child_main(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0
    targets = [t for t in args.targets.split(",") if t]
    for target in [t for t in targets if t in PYTHONS and not PYTHONS[t].is_file()]:
        print(f"{target}: skipped (run bash bench/setup_csv_bench.sh)", file=sys.stderr)
        targets.remove(target)
    source = ensure_csv(args.workdir, args.size, args.timeout)
    runs: list[Run] = []
    for round_ in range(args.rounds):
        order = targets[round_ % len(targets) :] + targets[: round_ % len(targets)]
        for target in order:
            output = args.workdir / f"out-{target}.parquet"
            run = run_child(target, source, output, args.timeout)
            output.unlink(missing_ok=True)
            if run is not None:
                runs.append(run)
                print(
                    f"round {round_ + 1}: {target}: {run.mb_per_s:.1f} MB/s, "
                    f"{run.peak_rss_mb:.0f} MB peak",
                    file=sys.stderr,
                )
    summary = summarize(runs)
    ratios = report(summary, source.stat().st_size)
    save(args, source, runs, summary, ratios)
    return 0


def save(
    args: argparse.Namespace,
    source: Path,
    runs: list[Run],
    summary: dict[str, dict[str, float]],
    ratios: dict[str, Any],
) -> None:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    document = {
        "input": {"path": str(source), "bytes": source.stat().st_size},
        "rounds": args.rounds,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
        },
        "pythons": {target: str(path) for target, path in PYTHONS.items()},
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "ratios": ratios,
        "goals": GOALS,
    }
    path = results / f"csv_ingest-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {path}")


if __name__ == "__main__":
    sys.exit(main())
