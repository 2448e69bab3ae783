from __future__ import annotations

import pytest


@pytest.fixture
def env(monkeypatch):
    """Sets data-node environment variables (VECSTORE_<name>) for deployments opened after it;
    the background thread is off unless a test turns it on."""
    monkeypatch.setenv("VECSTORE_BACKGROUND", "0")

    def set_env(**values: object) -> None:
        for k, v in values.items():
            monkeypatch.setenv(f"VECSTORE_{k.upper()}", str(v))

    return set_env
