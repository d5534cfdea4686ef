"""csv-ingest's core pieces on their own: sniffing, the UTF-8 check, line numbers, key layout,
the streaming converter (row groups, restarts) and its memory bound (in a subprocess)."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eventfn import ConfigurationError, DependencyUnavailable
from eventfn._loader import load_function, module_name

ROOT = Path(__file__).resolve().parents[2]
WHEN = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
MiB = 1024 * 1024


def _module(name: str) -> ModuleType:
    load_function("csv-ingest", ROOT / "functions")
    return importlib.import_module(f"{module_name('csv-ingest')}.{name}")


converter = _module("converter")
source_mod = _module("_source")
quarantine_mod = _module("_quarantine")
layout_mod = _module("_layout")
errors = _module("_errors")
handler = _module("handler")


def run(data: bytes, **settings: Any) -> tuple[Any, pa.Table, str]:
    sink, bad = io.BytesIO(), io.BytesIO()
    options = converter.ConvertSettings(
        source_file="s3://b/raw/t.csv", processed_at=WHEN, **settings
    )
    result = converter.convert(lambda: io.BytesIO(data), sink, bad, options)
    return result, pq.read_table(io.BytesIO(sink.getvalue())), bad.getvalue().decode()


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (b"a;b;c\n1;2;3\n", ";"),
        (b"a\tb\n1\t2\n", "\t"),
        (b"a|b\n1|2\n", "|"),
        (b'a,b\n"x;y;z",1\n"p;q",2\n', ","),
        (b'id;note\n1;"a, b, c"\n2;"d, e"\n', ";"),
        (b"\xef\xbb\xbfa;b\n", ";"),
        (b"value\n1\n2\n", ","),
        (b"a:b\n1:2\n", ","),  # not a candidate: the default
    ],
)
def test_sniffing(sample: bytes, expected: str) -> None:
    assert source_mod.sniff_delimiter(sample) == expected


def _drain(data: bytes, chunk: int) -> Any:
    source = source_mod.CheckedSource(io.BytesIO(data))
    while source.read(chunk):
        pass
    return source


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_utf8_is_checked_across_reads(chunk: int) -> None:
    good = "ID,Städte\nÉ,東京\n".encode()
    assert _drain(good, chunk).bytes_read == len(good)
    bad = good + b"x,\xe6\x9d\n"  # a truncated 3-byte sequence followed by a newline
    with pytest.raises(errors.CsvNotUtf8) as caught:
        _drain(bad, chunk)
    assert (caught.value.offset, caught.value.line) == (len(good) + 2, 3)


def test_a_sequence_cut_off_at_the_end_is_invalid() -> None:
    with pytest.raises(errors.CsvNotUtf8) as caught:
        _drain("a\né".encode()[:-1], 2)
    assert (caught.value.offset, caught.value.line) == (2, 2)


def test_peeked_bytes_are_read_again() -> None:
    source = source_mod.CheckedSource(io.BytesIO(b"abcdef"))
    assert source.peek(4) == b"abcd"
    assert source.read(2) + source.read(10) + source.read(10) == b"abcdef"


def test_record_lines_follow_pyarrow_numbering() -> None:
    text = b'\xef\xbb\xbfh1,h2\r\n\r\n1,"a\r\nb"\r\n\n2,x\n3,"p\nq\nr"\n4,y\n'
    lines = list(quarantine_mod.record_lines(io.BytesIO(text), ","))
    assert lines == [(1, 1), (2, 3), (3, 6), (4, 7), (5, 10)]


def test_layout() -> None:
    sales = layout_mod.layout_for("raw/sales/2026-11-28.csv", "etag1", WHEN)
    assert sales.output_key.startswith("processed/sales/year=2026/month=11/day=28/2026-11-28-")
    assert (
        sales.quarantine_key
        == sales.output_key.replace("processed/", "quarantine/", 1)[: -len(".parquet")] + ".csv"
    )
    nested = layout_mod.layout_for("raw/sales/eu/2026/x.csv", "etag1", WHEN)
    assert nested.dataset == "sales" and nested.name.startswith("x-")
    flat = layout_mod.layout_for("raw/orders.csv", "etag1", WHEN)
    assert flat.dataset == "orders" and flat.name.startswith("orders-")
    again = layout_mod.layout_for("raw/sales/2026-11-28.csv", "etag1", WHEN)
    newer = layout_mod.layout_for("raw/sales/2026-11-28.csv", "etag2", WHEN)
    assert again == sales and newer.name != sales.name
    late = dt.datetime.fromisoformat("2026-11-28T23:30:00-05:00")
    assert layout_mod.layout_for("raw/a/b.csv", "e", late).partition.endswith("day=29")


def test_event_time_prefers_the_notification() -> None:
    fallback = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    pick = layout_mod.event_time
    assert pick({"event_time": "2026-11-28T10:00:00Z"}, "2026-01-01T00:00:00Z", fallback) == (
        dt.datetime(2026, 11, 28, 10, tzinfo=dt.UTC)
    )
    assert pick({}, "2026-01-01T00:00:00Z", fallback).year == 2026
    assert pick({"event_time": "not a time"}, None, fallback) == fallback


def test_settings_from_the_environment() -> None:
    config = handler.IngestConfig.from_env
    assert config({}) == handler.IngestConfig()
    assert config({"CSV_INGEST_DELIMITER": "tab"}).delimiter == "\t"
    assert config({"CSV_INGEST_DELIMITER": ";"}).delimiter == ";"
    assert config({"CSV_INGEST_MULTIPART_THRESHOLD": "1024"}).multipart_threshold == 1024
    for bad in (
        {"CSV_INGEST_DELIMITER": ";;"},
        {"CSV_INGEST_DELIMITER": '"'},
        {"CSV_INGEST_BLOCK_SIZE": "1MB"},
        {"CSV_INGEST_MULTIPART_CHUNKSIZE": "0"},
    ):
        with pytest.raises(ConfigurationError):
            config(bad)


def test_row_groups_are_bounded_by_size() -> None:
    rows = [f"{n},{'x' * 50},{n * 0.5}" for n in range(20_000)]
    data = ("n,s,f\n" + "\n".join(rows) + "\n").encode()
    result, table, _ = run(data, block_size=64 * 1024, row_group_bytes=256 * 1024)
    assert result.rows == table.num_rows == 20_000
    assert table.column("n").to_pylist() == list(range(20_000))
    groups = pq.ParquetFile(io.BytesIO(_convert_bytes(data))).metadata.num_row_groups
    assert 2 < groups < 20


def _convert_bytes(data: bytes) -> bytes:
    sink = io.BytesIO()
    options = converter.ConvertSettings(
        source_file="s", processed_at=WHEN, block_size=64 * 1024, row_group_bytes=256 * 1024
    )
    converter.convert(lambda: io.BytesIO(data), sink, io.BytesIO(), options)
    return sink.getvalue()


def test_conversion_is_deterministic() -> None:
    data = b"a,b\n" + b"".join(b"%d,v%d\n" % (n, n) for n in range(5000))
    assert _convert_bytes(data) == _convert_bytes(data)


def test_each_restart_retypes_one_more_column() -> None:
    lines = [f"{n},{n},,{n}" for n in range(3000)]
    lines[2000] = "2000,two-thousand,late,2000"
    lines[2500] = "2500,2500,,x"
    data = ("a,b,c,d\n" + "\n".join(lines) + "\n").encode()
    result, table, _ = run(data, block_size=4096)
    assert result.retyped_columns == ("b", "c", "d") and result.attempts == 4
    assert [str(t) for t in table.schema.types[:4]] == ["int64", "string", "string", "string"]
    assert table.column("c").to_pylist()[2000] == "late"
    assert table.column("b").to_pylist()[:2] == ["0", "1"]


def test_an_all_empty_column_is_string() -> None:
    result, table, _ = run(b"a,b\n1,\n2,\n")
    assert table.schema.field("b").type == pa.string() and result.retyped_columns == ()
    assert table.column("b").to_pylist() == [None, None]


def test_a_row_longer_than_a_block_is_unparseable() -> None:
    data = b"a,b\n1," + b"x" * 5000 + b"\n"
    with pytest.raises(errors.CsvUnparseable) as caught:
        run(data, block_size=1024)
    assert "1024 bytes" in caught.value.detail


class _Dropping(io.BytesIO):
    """A stream whose connection resets after `limit` bytes (storage going away mid-read)."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.limit:
            raise ConnectionResetError("connection reset by peer")
        return super().read(size)


def test_a_read_failure_mid_stream_surfaces_as_itself() -> None:
    data = b"n,s\n" + b"".join(b"%d,x\n" % n for n in range(100_000))
    options = converter.ConvertSettings(source_file="s", processed_at=WHEN, block_size=8192)
    with pytest.raises(ConnectionResetError):
        converter.convert(lambda: _Dropping(data, 200_000), io.BytesIO(), io.BytesIO(), options)
    storage = _module("_storage")
    with pytest.raises(DependencyUnavailable), storage.storage_errors():
        raise ConnectionResetError("connection reset by peer")


def test_quarantine_line_numbers_across_many_blocks() -> None:
    rng = random.Random(7)
    lines: list[str] = ["id,text,n"]
    expected: list[tuple[int, str]] = []
    for n in range(3000):
        start = len(lines) + 1
        kind = rng.random()
        if kind < 0.05:
            row = f"{n},short"
            expected.append((start, row))
        elif kind < 0.15:
            row = f'{n},"multi\nline\nvalue",{n}'
        else:
            row = f"{n},plain,{n}"
        lines.extend(row.split("\n"))
    data = ("\n".join(lines) + "\n").encode()
    result, table, bad = run(data, block_size=2048)
    records = list(csv_rows(bad))
    assert result.quarantined_rows == len(expected) == len(records)
    assert [(int(r["line"]), r["row"]) for r in records] == expected
    assert table.num_rows == 3000 - len(expected)


def csv_rows(text: str) -> list[dict[str, str]]:
    import csv

    return list(csv.DictReader(io.StringIO(text)))


MEMORY_CHILD = """
import io, json, resource, sys, datetime as dt
from pathlib import Path
from eventfn._loader import load_function
import importlib
load_function("csv-ingest", Path(sys.argv[1]))
converter = importlib.import_module("eventfn_functions.csv_ingest.converter")
def peak():
    # VmHWM is this process's own peak; ru_maxrss would also carry the peak of the process
    # that spawned it (Linux keeps it across execve), here the whole pytest process
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return int(status.split("VmHWM:")[1].split()[0]) * 1024
def convert(path, sink):
    options = converter.ConvertSettings(source_file="s", processed_at=dt.datetime(2026, 1, 1))
    return converter.convert(lambda: open(path, "rb"), sink, io.BytesIO(), options)
convert(sys.argv[3], io.BytesIO())  # warm up: imports, thread pools, first allocations
before = peak()
if sys.argv[4] == "streaming":
    with open(sys.argv[5], "w+b") as sink:
        rows = convert(sys.argv[2], sink).rows
else:  # the whole-file approach, for comparison
    import pyarrow.csv as pacsv, pyarrow.parquet as pq
    table = pacsv.read_csv(sys.argv[2], parse_options=pacsv.ParseOptions(newlines_in_values=True))
    pq.write_table(table, sys.argv[5])
    rows = table.num_rows
print(json.dumps({"growth": peak() - before, "rows": rows}))
"""


def _write_csv(path: Path, size: int) -> int:
    rng = random.Random(11)
    names = ['"Smith, John"', '"say ""hi"""', "plain", '"two\nlines"']
    rows = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("id,amount,name,day,code\n")
        while out.tell() < size:
            chunk = [
                f"{rows + i},{rng.random() * 1000:.2f},{rng.choice(names)},"
                f"2026-{1 + i % 12:02d}-{1 + i % 28:02d},{rng.getrandbits(64):x}\n"
                for i in range(10_000)
            ]
            out.write("".join(chunk))
            rows += len(chunk)
    return rows


def _peak_growth(tmp_path: Path, csv_path: Path, mode: str) -> dict[str, int]:
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("id,amount,name,day,code\n1,2.5,x,2026-01-01,ff\n", encoding="utf-8")
    command = [
        sys.executable, "-c", MEMORY_CHILD, str(ROOT / "functions"), str(csv_path),
        str(tiny), mode, str(tmp_path / f"{mode}.parquet"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout)
    return result


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_memory_stays_bounded_for_a_50_mb_csv(tmp_path: Path) -> None:
    csv_path = tmp_path / "big.csv"
    rows = _write_csv(csv_path, 50 * MiB)
    streaming = _peak_growth(tmp_path, csv_path, "streaming")
    whole = _peak_growth(tmp_path, csv_path, "whole")
    assert streaming["rows"] == whole["rows"] == rows
    # the streaming growth is pyarrow's per-block working set plus allocator caches, about
    # 100 MB here whatever the input size; the whole-file approach grows with the input
    assert streaming["growth"] < 160 * MiB, streaming
    assert streaming["growth"] < 0.75 * whole["growth"], (streaming, whole)
