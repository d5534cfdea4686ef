"""hang: a function whose start-up never finishes, for the shutdown tests of `eventfn dev`.

While gunicorn's worker imports this file (the mesh is waiting for the readiness probe), it
connects to the test at 127.0.0.1:$HANG_TEST_PORT, sends "<worker pid> <master pid>\n" and then
blocks reading that connection. SIGTERM does not end the read (Python retries it), so the
process only goes away when the mesh kills it.
"""

from __future__ import annotations

import os
import socket

from eventfn import App, Context, Event

_test = socket.create_connection(("127.0.0.1", int(os.environ["HANG_TEST_PORT"])), timeout=30)
_test.sendall(f"{os.getpid()} {os.getppid()}\n".encode())
_test.settimeout(None)
_test.recv(1)  # returns only when the test closes the connection

app = App("hang")


@app.on("test.hang.v1")
def never(event: Event, ctx: Context) -> None:
    """Never reached while the test runs."""
