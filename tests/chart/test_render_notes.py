"""NOTES.txt: how to send a first event to a function that receives it."""

from __future__ import annotations

import helm_python as helm
from chart_testing import CHART


def test_notes_explain_how_to_send_a_first_event() -> None:
    with helm.Chart.load(CHART) as chart:
        notes = chart.render(None, name="eventfn", namespace="eventfn")[
            "eventfn/templates/NOTES.txt"
        ]
    assert "port-forward svc/broker-ingress" in notes
    assert "curl" in notes and "Ce-Type: eventfn.echo.requested.v1" in notes
    assert "http://localhost:8080/eventfn/default" in notes
    assert "See it arrive at echo:" in notes and "eventfn.dev/function=echo " in notes


def test_notes_example_is_an_event_that_reaches_its_function() -> None:
    """Without echo the example is a Trigger that an event with only a type reaches: not one of
    the prefix/suffix filtered storage Triggers (backup-auditor comes first by name)."""
    with helm.Chart.load(CHART) as chart:
        notes = chart.render(
            {"functions": {"echo": {"enabled": False}}}, name="eventfn", namespace="eventfn"
        )["eventfn/templates/NOTES.txt"]
    assert "Ce-Type: eventfn.order.confirmed.v1" in notes
    assert "See it arrive at inventory-updater:" in notes
    assert "backup-auditor" not in notes.split("Functions:", 1)[1].split("\n", 1)[1]
