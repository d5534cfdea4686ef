"""The core of csv-ingest: a CSV byte stream in, one Parquet file out, in bounded memory.

pyarrow's incremental reader (`pyarrow.csv.open_csv`) parses one block at a time from the
stream; each batch gets the `processed_at` and `source_file` columns and is buffered until a
row group's worth (`row_group_bytes`) is written with `pq.ParquetWriter`. Nothing holds the
whole file: memory is a few blocks plus one row group.

Column types (the choice, documented): pyarrow infers every column's type from the first
block. When a later block does not convert (a column of integers that turns into text further
down), the conversion is restarted from the beginning of the stream with that column read as
`string` (`ConvertOptions.column_types`); each restart adds at least one column, so it ends.
Restarting costs one more read of the object, only for files whose types change after the
first block, and keeps every other column's inferred type. A column that is empty in the whole
first block (inferred `null`) is written as `string`.

Parsing is serial (`use_threads=False`): pyarrow then gives every ragged row its record
number, which the quarantine needs. It runs on a reader thread (`Prefetch`) while the caller's
thread encodes Parquet, so the two stages use two cores. Quoted values may span lines
(`newlines_in_values`). Text, dates and booleans are dictionary-encoded; numbers and
timestamps are not (see `dictionary_columns`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._errors import CsvEmpty, CsvReservedColumn, CsvUnparseable
from ._prefetch import Prefetch
from ._quarantine import BadRows, write_quarantine
from ._source import SNIFF_BYTES, CheckedSource, sniff_delimiter

PROCESSED_AT = "processed_at"
SOURCE_FILE = "source_file"
PROCESSED_AT_TYPE = pa.timestamp("us", tz="UTC")
DEFAULT_BLOCK_SIZE = 1 << 20
DEFAULT_ROW_GROUP_BYTES = 8 << 20
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): .*CSV conversion error", re.DOTALL)

Opener = Callable[[], BinaryIO]


@dataclass(frozen=True)
class ConvertSettings:
    """What one conversion needs besides its streams."""

    source_file: str
    processed_at: datetime
    delimiter: str | None = None  # None: sniffed from the first 64 KiB
    block_size: int = DEFAULT_BLOCK_SIZE
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES


@dataclass(frozen=True)
class Conversion:
    """The outcome of a conversion."""

    rows: int
    columns: tuple[tuple[str, str], ...]  # (name, arrow type) of the Parquet schema
    bytes_in: int
    quarantined_rows: int
    delimiter: str
    retyped_columns: tuple[str, ...]  # read as string after a later block failed to convert
    attempts: int


class _Retype(Exception):
    """A later block did not convert: restart with these columns read as string."""

    def __init__(self, columns: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(columns)))
        self.columns = columns


def convert(
    open_source: Opener, sink: BinaryIO, quarantine: BinaryIO, settings: ConvertSettings
) -> Conversion:
    """Convert the CSV that `open_source()` streams into Parquet written to `sink`.

    Ragged rows are written as CSV to `quarantine` (left empty when there are none).
    `open_source` is called again for each restart and for the quarantine's line numbers.
    Raises CsvEmpty, CsvNotUtf8, CsvUnparseable, CsvReservedColumn, or whatever reading the
    source raised (the caller maps storage errors).
    """
    retyped: set[str] = set()
    attempt = 0
    while True:
        attempt += 1
        try:
            return _attempt(
                open_source, sink, quarantine, settings, retyped=retyped, attempt=attempt
            )
        except _Retype as retype:
            if retype.columns <= retyped:
                raise CsvUnparseable("a column cannot be converted even as text") from None
            retyped |= retype.columns


def _attempt(
    open_source: Opener,
    sink: BinaryIO,
    quarantine: BinaryIO,
    settings: ConvertSettings,
    *,
    retyped: set[str],
    attempt: int,
) -> Conversion:
    for stream in (sink, quarantine):
        stream.seek(0)
        stream.truncate()
    bad = BadRows()
    try:
        with closing(CheckedSource(open_source())) as source:
            sample = source.peek(SNIFF_BYTES)
            if not sample:
                raise CsvEmpty("the object is empty (0 bytes)")
            delimiter = settings.delimiter or sniff_delimiter(sample)
            reader = _open_reader(source, delimiter, retyped, bad, settings.block_size)
            rows, schema = _write_parquet(reader, source, sink, settings)
            bytes_in = source.bytes_read
        if bad.count:
            write_quarantine(bad, open_source, delimiter, quarantine, settings.block_size)
        return Conversion(
            rows=rows,
            columns=tuple((field.name, str(field.type)) for field in schema),
            bytes_in=bytes_in,
            quarantined_rows=bad.count,
            delimiter=delimiter,
            retyped_columns=tuple(sorted(retyped)),
            attempts=attempt,
        )
    finally:
        bad.close()


def _open_reader(
    source: CheckedSource, delimiter: str, retyped: set[str], bad: BadRows, block_size: int
) -> pacsv.CSVStreamingReader:
    read = pacsv.ReadOptions(use_threads=False, block_size=block_size)
    parse = pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, invalid_row_handler=bad
    )
    # every byte was checked by CheckedSource before pyarrow got it
    types = {name: pa.string() for name in retyped}
    options = pacsv.ConvertOptions(column_types=types, check_utf8=False)
    try:
        return pacsv.open_csv(
            source,
            read_options=read,
            parse_options=parse,
            convert_options=options,
            memory_pool=memory_pool(),
        )
    except Exception as error:
        raise _translate(error, source, None, block_size) from None


def _write_parquet(
    reader: pacsv.CSVStreamingReader,
    source: CheckedSource,
    sink: BinaryIO,
    settings: ConvertSettings,
) -> tuple[int, pa.Schema]:
    schema = output_schema(reader.schema)
    constants = _Constants(settings.processed_at, settings.source_file)
    writer = pq.ParquetWriter(
        sink, schema, use_dictionary=dictionary_columns(schema), memory_pool=memory_pool()
    )
    batches = Prefetch(_batches(reader, source, settings.block_size), name="csv-ingest-reader")
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_bytes = 0
    try:
        for batch in batches:
            conformed = _conform(batch, schema, constants)
            pending.append(conformed)
            pending_bytes += conformed.nbytes
            rows += conformed.num_rows
            if pending_bytes >= settings.row_group_bytes:
                _write_row_group(writer, pending, schema)
                pending, pending_bytes = [], 0
        _write_row_group(writer, pending, schema)
        writer.close()
    except BaseException:
        _close_quietly(writer)
        raise
    finally:
        batches.close()
    return rows, schema


def memory_pool() -> pa.MemoryPool:
    """jemalloc where pyarrow has it: with a reader and a writer thread it keeps the peak RSS
    about 50 MB lower than pyarrow's default (mimalloc) for the same speed."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.default_memory_pool()


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary encoding: text, dates, booleans and the constant columns.

    Their values repeat; numbers and timestamps mostly do not, and trying a dictionary first
    costs the writer CPU before it falls back to plain encoding (and the file gets no smaller).
    """
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_boolean, pa.types.is_date)
    wanted = [field.name for field in schema if any(kind(field.type) for kind in kinds)]
    return [*wanted, PROCESSED_AT]


def output_schema(csv_schema: pa.Schema) -> pa.Schema:
    """The Parquet schema: the CSV's columns (`null` ones as string) plus the two added ones."""
    for reserved in (PROCESSED_AT, SOURCE_FILE):
        if reserved in csv_schema.names:
            raise CsvReservedColumn(
                f"the header has a column named {reserved!r}, which csv-ingest adds itself"
            )
    fields = [
        pa.field(field.name, pa.string()) if pa.types.is_null(field.type) else field
        for field in csv_schema
    ]
    fields.append(pa.field(PROCESSED_AT, PROCESSED_AT_TYPE, nullable=False))
    fields.append(pa.field(SOURCE_FILE, pa.string(), nullable=False))
    return pa.schema(fields)


def _batches(
    reader: pacsv.CSVStreamingReader, source: CheckedSource, block_size: int
) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except Exception as error:
            raise _translate(error, source, reader.schema, block_size) from None
        if batch.num_rows:
            yield batch


def _translate(
    error: Exception, source: CheckedSource, schema: pa.Schema | None, block_size: int
) -> BaseException:
    """The error to raise for a failure inside pyarrow (the source's own failure first)."""
    if source.failure is not None:
        return source.failure
    if not isinstance(error, pa.ArrowInvalid):
        return error
    message = str(error)
    found = _CONVERSION_ERROR.search(message)
    if found and schema is not None:
        index = int(found.group(1))
        if index < len(schema):
            return _Retype(frozenset({schema.field(index).name}))
        return _Retype(frozenset(f.name for f in schema if not pa.types.is_string(f.type)))
    if "Empty CSV file" in message:
        return CsvEmpty("the file has no header row (only a byte order mark or blank lines)")
    if "straddling object" in message:
        detail = f"a single row is longer than the parser's block size ({block_size} bytes)"
    else:
        detail = "the file cannot be parsed as CSV"
    return CsvUnparseable(detail)


def _conform(batch: pa.RecordBatch, schema: pa.Schema, constants: _Constants) -> pa.RecordBatch:
    size = batch.num_rows
    columns = [
        pa.nulls(size, pa.string(), memory_pool()) if pa.types.is_null(column.type) else column
        for column in batch.columns
    ]
    columns.extend(constants.arrays(size))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _write_row_group(
    writer: pq.ParquetWriter, batches: list[pa.RecordBatch], schema: pa.Schema
) -> None:
    if batches:
        table = pa.Table.from_batches(batches, schema=schema)
        writer.write_table(table, row_group_size=table.num_rows)


def _close_quietly(writer: pq.ParquetWriter) -> None:
    """Finish a writer whose output is discarded: the original error is the one that matters."""
    with suppress(Exception):
        writer.close()


class _Constants:
    """The added columns: one long array per value, sliced (zero-copy) for every batch."""

    def __init__(self, processed_at: datetime, source_file: str) -> None:
        self._scalars = (
            pa.scalar(processed_at, PROCESSED_AT_TYPE),
            pa.scalar(source_file, pa.string()),
        )
        self._arrays: list[pa.Array] = []
        self._size = 0

    def arrays(self, size: int) -> list[pa.Array]:
        if size > self._size:
            self._size = max(size, 2 * self._size)
            pool = memory_pool()
            self._arrays = [pa.repeat(scalar, self._size, pool) for scalar in self._scalars]
        return [array.slice(0, size) for array in self._arrays]
