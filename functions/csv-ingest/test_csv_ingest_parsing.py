"""csv-ingest's reading of CSV dialects: BOM, CRLF and quoted newlines, the delimiter, ragged rows
and columns that turn to text late; through the WSGI test client against moto's S3 server."""

from __future__ import annotations

import pyarrow as pa
import pytest
from csv_ingest_testing import (
    RAGGED,
    Factory,
    Sink,
    Store,
    only_output,
    processed,
    upload_and_deliver,
)
from werkzeug.test import Client


def test_bom_crlf_and_quoted_newlines(client: Client, store: Store) -> None:
    body = b'\xef\xbb\xbfid,note\r\n1,"first\r\nsecond"\r\n2,"a\nb\nc"\r\n3,plain\r\n'
    assert upload_and_deliver(client, store, "raw/notes/n.csv", body).status_code == 204
    table = store.table(only_output(store))
    assert table.schema.names[:2] == ["id", "note"]  # no BOM in the first name
    assert table.column("note").to_pylist() == ["first\r\nsecond", "a\nb\nc", "plain"]
    assert table.column("id").to_pylist() == [1, 2, 3]


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_the_delimiter_is_sniffed(
    client: Client, store: Store, sink: Sink, delimiter: str, name: str
) -> None:
    d = delimiter
    text = f'city{d}amount{d}note\nParis{d}1,5{d}x\nOslo{d}2{d}"a{d}b"\n'
    response = upload_and_deliver(client, store, f"raw/{name}/cities.csv", text.encode())
    assert response.status_code == 204
    table = store.table(only_output(store))
    assert table.column("city").to_pylist() == ["Paris", "Oslo"]
    assert table.column("amount").to_pylist() == ["1,5", "2"]
    assert table.column("note").to_pylist() == ["x", f"a{delimiter}b"]
    assert processed(sink)[0].data["delimiter"] == delimiter


def test_a_configured_delimiter_wins_over_sniffing(
    make_client: Factory, store: Store, sink: Sink
) -> None:
    client = make_client(CSV_INGEST_DELIMITER=",")
    assert upload_and_deliver(client, store, "raw/x/semi.csv", b"a;b\n1;2\n").status_code == 204
    assert store.table(only_output(store)).schema.names[0] == "a;b"
    assert processed(sink)[0].data["delimiter"] == ","


def test_ragged_rows_are_quarantined_with_their_line_numbers(
    client: Client, store: Store, sink: Sink
) -> None:
    assert upload_and_deliver(client, store, "raw/inv/r.csv", RAGGED).status_code == 204
    output = only_output(store)
    table = store.table(output)
    assert table.column("id").to_pylist() == [1, 2, 5, 6]
    assert table.column("name").to_pylist() == ["ok", "two\nlines", "x\ny", "last"]

    quarantine_key = "quarantine/" + output.removeprefix("processed/").replace(".parquet", ".csv")
    assert store.keys("quarantine/") == [quarantine_key]
    lines = store.get(quarantine_key).decode().splitlines()
    assert lines == [
        "line,record,expected_fields,actual_fields,row",
        '5,4,3,2,"3,short"',
        '7,5,3,4,"4,too,many,fields"',
    ]
    [event] = processed(sink)
    assert event.data["rows"] == 4 and event.data["quarantined_rows"] == 2
    assert event.data["quarantine_key"] == quarantine_key


def test_a_column_that_turns_to_text_later_is_read_as_string(
    make_client: Factory, store: Store, sink: Sink
) -> None:
    client = make_client(CSV_INGEST_BLOCK_SIZE="4096")
    lines = [f"{n},{n * 10},{n / 4}" for n in range(2000)]
    lines[1500] = "1500,X-15000,375.0"
    body = ("id,code,ratio\n" + "\n".join(lines) + "\n").encode()
    assert upload_and_deliver(client, store, "raw/mixed/m.csv", body).status_code == 204
    table = store.table(only_output(store))
    assert table.schema.field("code").type == pa.string()
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("ratio").type == pa.float64()
    codes = table.column("code").to_pylist()
    assert codes[:3] == ["0", "10", "20"] and codes[1500] == "X-15000" and len(codes) == 2000
    assert processed(sink)[0].data["retyped_columns"] == ["code"]
