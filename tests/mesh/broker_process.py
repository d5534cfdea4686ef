"""A broker process for the crash test: `python broker_process.py MANIFESTS DB SUBSCRIBER_URL`.

Serves the Broker ingress on a free loopback port, printed as the first line on stdout, and
dispatches every Trigger to SUBSCRIBER_URL until it is killed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from werkzeug.serving import make_server

from eventfn.mesh._broker import Broker
from eventfn.mesh._topology import load_topology


def main(argv: list[str]) -> None:
    manifests, db, subscriber = argv[1:4]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    broker = Broker(load_topology(Path(manifests)), Path(db), lambda name: subscriber, workers=8)
    server = make_server("127.0.0.1", 0, broker.wsgi(), threaded=True)
    broker.start()
    print(server.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
