"""Fixtures of the features tests: Pylians, the oracle of the voxel fields.

Pylians is a failure, never a skip, when it is not installed: CI installs it
(``darkstack[test]``). A developer without it sets ``DARKSTACK_WITHOUT_PYLIANS=1`` to skip
those checks knowingly.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

ABSENT = "DARKSTACK_WITHOUT_PYLIANS"


def _pylians(module: str) -> ModuleType:
    if os.environ.get(ABSENT):
        pytest.skip(f"{ABSENT} is set: Pylians deliberately absent")
    try:
        return importlib.import_module(module)
    except ImportError as error:
        pytest.fail(
            f"Pylians' {module} is not installed ({error}): pip install 'darkstack[test]', or "
            f"set {ABSENT}=1 to skip the oracle tests knowingly"
        )


@pytest.fixture(scope="session")
def mas_library() -> ModuleType:
    """Pylians' ``MAS_library``."""
    return _pylians("MAS_library")


@pytest.fixture(scope="session")
def pk_library() -> ModuleType:
    """Pylians' ``Pk_library``."""
    return _pylians("Pk_library")
