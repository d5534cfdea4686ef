"""Fixtures shared by the unit tests: the schema registry of the checked-in catalog."""

from __future__ import annotations

import pytest
from schema_testing import REPO_SCHEMAS

from eventfn._schemas import SchemaRegistry


@pytest.fixture(scope="module")
def repo_registry() -> SchemaRegistry:
    return SchemaRegistry.from_directory(REPO_SCHEMAS)
