"""The ``alpaca:`` section of a venue config: hosts, custom URLs, the secret kept secret."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tradenode import load_config
from tradenode.brokers.alpaca import AlpacaSettings, OutsideSession

ROOT = Path(__file__).resolve().parent.parent


def settings(**fields: Any) -> AlpacaSettings:
    base: dict[str, Any] = {"key_id": "PKTEST", "secret_key": "a-secret-of-some-length"}
    base.update(fields)
    return AlpacaSettings.model_validate(base)


def test_paper_and_live_use_alpacas_hosts_and_the_feed() -> None:
    assert settings().urls() == (
        "https://paper-api.alpaca.markets",
        "wss://paper-api.alpaca.markets/stream",
        "wss://stream.data.alpaca.markets/v2/iex",
    )
    assert settings(environment="live", feed="sip").urls() == (
        "https://api.alpaca.markets",
        "wss://api.alpaca.markets/stream",
        "wss://stream.data.alpaca.markets/v2/sip",
    )


def test_custom_needs_its_three_urls_with_the_right_schemes() -> None:
    custom = settings(
        environment="custom",
        rest_url="http://127.0.0.1:9/",
        stream_url="ws://127.0.0.1:9/stream",
        data_url="ws://127.0.0.1:9",
    )
    assert custom.urls() == (
        "http://127.0.0.1:9",
        "ws://127.0.0.1:9/stream",
        "ws://127.0.0.1:9/v2/iex",
    )
    # A validator's ConfigError reaches the caller in pydantic's ValueError (the
    # node's config loader turns it back into a ConfigError naming the key).
    with pytest.raises(ValueError, match="needs rest_url"):
        settings(environment="custom", rest_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="expected a http/https URL"):
        settings(
            environment="custom",
            rest_url="ws://127.0.0.1:9",
            stream_url="ws://x/stream",
            data_url="ws://x",
        )
    with pytest.raises(ValueError, match="own URLs"):
        settings(rest_url="http://127.0.0.1:9")  # paper uses Alpaca's own URLs


def test_outside_session_and_the_secret() -> None:
    assert settings().outside_session is OutsideSession.DENY
    assert settings(outside_session="queue").outside_session is OutsideSession.QUEUE
    with pytest.raises(ValueError, match="outside_session"):
        settings(outside_session="maybe")
    with pytest.raises(ValueError, match="must not be empty"):
        settings(secret_key="")
    assert "a-secret-of-some-length" not in repr(settings())


def test_the_shipped_paper_config_loads_without_printing_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(os.environ, "ALPACA_API_KEY_ID", "PKTEST")
    monkeypatch.setitem(os.environ, "ALPACA_API_SECRET_KEY", "shipped-config-secret")
    config = load_config(ROOT / "config" / "alpaca-paper.yaml")
    (venue,) = config.venues
    assert venue.kind == "alpaca"
    assert "shipped-config-secret" not in repr(config) and "shipped-config-secret" not in str(
        config
    )
