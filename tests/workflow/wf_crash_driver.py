"""The engine process of the crash-resume test: resume, start N executions, drive them to the end.

argv: DATABASE_URL TASK_URL COUNT. Prints DONE when no execution is RUNNING. Everything it does
is idempotent, so a run killed at any point and started again converges.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sqlalchemy import func, select
from wf_testing import crash_definitions, crash_workflow

from eventfn._store import create_engine_from_url, upgrade
from eventfn._tables_workflow import workflow_executions
from eventfn._wf_definition import parse_definition
from eventfn._wf_engine import WorkflowEngine
from eventfn._wf_tasks import TaskInvoker


def main(url: str, task_url: str, count: int) -> int:
    db = create_engine_from_url(url)
    upgrade(db)
    definitions = {n: parse_definition(n, d) for n, d in crash_definitions().items()}
    engine = WorkflowEngine(db, definitions, TaskInvoker(lambda name: task_url))
    engine.resume()
    engine.run_due()
    for index in range(count):
        engine.start(crash_workflow(index), {"v": index}, name=f"run-{index}")
    running = select(func.count()).where(workflow_executions.c.status == "RUNNING")
    while True:
        engine.run_due()
        engine.resume()
        with db.connect() as connection:
            if connection.execute(running).scalar() == 0:
                break
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
