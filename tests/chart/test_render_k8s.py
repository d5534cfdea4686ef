"""k8s/ is the rendering of the chart with its default values, laid out one file per function."""

from __future__ import annotations

from pathlib import Path

import yaml
from chart_testing import CHART, ROOT, rendered

from eventfn._render import HEADER, diff_k8s, layout, write_k8s


def test_checked_in_k8s_equals_the_rendering_of_default_values() -> None:
    stale = diff_k8s(ROOT)
    assert stale == [], (
        f"k8s/ differs from charts/eventfn rendered with default values in {stale}; "
        "run `make render` (eventfn render) and commit k8s/"
    )


def test_write_k8s_rewrites_drifted_files_and_removes_stale_ones(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "charts").mkdir(parents=True)
    (project / "charts" / "eventfn").symlink_to(CHART, target_is_directory=True)
    k8s = project / "k8s"
    (k8s / "functions").mkdir(parents=True)
    (k8s / "README.md").write_text("kept\n")
    (k8s / "functions" / "gone.yaml").write_text("kind: Service\n")
    (k8s / "20-broker.yaml").write_text("edited by hand\n")

    assert {"functions/gone.yaml", "20-broker.yaml", "functions/echo.yaml"} <= set(
        diff_k8s(project)
    )
    changed = write_k8s(project)

    assert diff_k8s(project) == []
    assert (k8s / "README.md").read_text() == "kept\n"
    assert not (k8s / "functions" / "gone.yaml").exists()
    assert {path.relative_to(k8s).as_posix() for path in changed} == {
        *layout(rendered(None)),
        "functions/gone.yaml",
    }
    assert write_k8s(project) == []


def test_layout_puts_each_function_in_its_own_file_and_kinds_in_ordered_files() -> None:
    files = layout(rendered(None))
    assert list(files) == sorted(files)
    assert {"00-namespace.yaml", "20-broker.yaml", "functions/echo.yaml"} <= set(files)
    echo = list(yaml.safe_load_all(files["functions/echo.yaml"].removeprefix(HEADER)))
    assert [doc["kind"] for doc in echo] == ["ServiceAccount", "Service", "Trigger"]
    assert {doc["metadata"]["labels"]["eventfn.dev/function"] for doc in echo} == {"echo"}
    assert all(text.startswith(HEADER + "---\n") for text in files.values())
