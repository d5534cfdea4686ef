"""SQL access of the workflow engine: executions (the checkpoints), history, timers.

Every checkpoint is an optimistic update (`WHERE version = :seen`): two engine replicas that step
the same execution never both win, the loser simply stops.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from eventfn._tables_workflow import workflow_executions, workflow_history, workflow_timers

Row = dict[str, Any]


def dumps(value: Any) -> str:
    """JSON text of a workflow value (compact, key order kept)."""
    return json.dumps(value, separators=(",", ":"))


def insert_execution(connection: Connection, row: Row) -> bool:
    """Insert a new execution; False when one with this id exists already."""
    try:
        with connection.begin_nested():
            connection.execute(insert(workflow_executions).values(**row))
    except IntegrityError:
        return False
    return True


def load(connection: Connection, execution_id: str) -> Row | None:
    """The execution row, or None."""
    found = connection.execute(
        select(workflow_executions).where(workflow_executions.c.id == execution_id)
    ).first()
    return None if found is None else dict(found._mapping)


def checkpoint(connection: Connection, execution_id: str, seen: int, changes: Row) -> bool:
    """Apply `changes` if nobody moved the execution since version `seen`."""
    result = connection.execute(
        update(workflow_executions)
        .where(workflow_executions.c.id == execution_id, workflow_executions.c.version == seen)
        .values(**changes, version=seen + 1)
    )
    return result.rowcount == 1


def add_history(connection: Connection, execution_id: str, seq: int, entry: Row) -> None:
    """Append the history entry of checkpoint `seq` (the execution's new version)."""
    connection.execute(insert(workflow_history).values(execution_id=execution_id, seq=seq, **entry))


def set_timer(connection: Connection, execution_id: str, due_at: float, kind: str) -> None:
    """Store the deadline of a waiting execution (one per execution)."""
    clear_timer(connection, execution_id)
    connection.execute(
        insert(workflow_timers).values(execution_id=execution_id, due_at=due_at, kind=kind)
    )


def clear_timer(connection: Connection, execution_id: str) -> None:
    """Remove the execution's timer, if any."""
    connection.execute(
        delete(workflow_timers).where(workflow_timers.c.execution_id == execution_id)
    )


def due_timers(connection: Connection, now: float, limit: int) -> list[str]:
    """Ids of executions whose timer is due, earliest first."""
    rows = connection.execute(
        select(workflow_timers.c.execution_id)
        .where(workflow_timers.c.due_at <= now)
        .order_by(workflow_timers.c.due_at)
        .limit(limit)
    )
    return [str(row[0]) for row in rows]


def ready_executions(
    connection: Connection, limit: int, updated_before: float | None = None
) -> list[str]:
    """Ids of RUNNING executions that can be stepped now (to resume after a crash); with
    `updated_before`, only those whose last checkpoint is older than that."""
    table = workflow_executions
    conditions = [table.c.status == "RUNNING", table.c.phase == "READY"]
    if updated_before is not None:
        conditions.append(table.c.updated_at <= updated_before)
    rows = connection.execute(
        select(table.c.id)
        .where(*conditions)
        .order_by(workflow_executions.c.started_at)
        .limit(limit)
    )
    return [str(row[0]) for row in rows]


def unannounced(connection: Connection, finished_before: float, limit: int) -> list[Row]:
    """Executions finished before `finished_before` whose final event has not gone out yet."""
    table = workflow_executions
    rows = connection.execute(
        select(table)
        .where(
            table.c.status.in_(("SUCCEEDED", "FAILED")),
            table.c.announced.is_(None),
            table.c.finished_at <= finished_before,
        )
        .order_by(table.c.finished_at)
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def mark_announced(connection: Connection, execution_id: str, status: str) -> None:
    """Record that the event of `status` went out (unless the execution moved on meanwhile)."""
    table = workflow_executions
    connection.execute(
        update(table)
        .where(table.c.id == execution_id, table.c.status == status)
        .values(announced=status)
    )


def list_executions(
    connection: Connection, workflow: str | None, status: str | None, limit: int
) -> list[Row]:
    """The newest executions, optionally of one workflow and/or status."""
    query = select(workflow_executions).order_by(workflow_executions.c.started_at.desc())
    if workflow is not None:
        query = query.where(workflow_executions.c.workflow == workflow)
    if status is not None:
        query = query.where(workflow_executions.c.status == status)
    return [dict(row._mapping) for row in connection.execute(query.limit(limit))]


def history(connection: Connection, execution_id: str) -> Sequence[Row]:
    """The history entries of an execution, in order."""
    rows = connection.execute(
        select(workflow_history)
        .where(workflow_history.c.execution_id == execution_id)
        .order_by(workflow_history.c.seq)
    )
    return [dict(row._mapping) for row in rows]
