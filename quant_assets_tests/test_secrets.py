"""The one scrubber (quant_assets.secrets): which variables are secret, the forms a value takes
inside other text, cut-off values, exception chains, log records, and one_line naming a cause."""

import base64
import json
import logging
import uuid
from urllib.parse import quote

import dagster as dg
import pytest

from quant_assets.config import settings_from_json
from quant_assets.lib.providers import ProvidersResource, with_env_base_urls
from quant_assets.providers.base import MalformedResponse, ProviderError
from quant_assets.providers.resilience import one_line
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.secrets import (
    MASK,
    ScrubbedError,
    is_secret_name,
    scrub,
    scrub_data,
    scrub_exception,
    scrubbing_errors,
    secret_values,
)


@pytest.fixture
def key(monkeypatch) -> str:
    value = "k3y-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    monkeypatch.setenv("QUANT_BINANCE_API_KEY", value)
    return value


def test_which_variables_are_secret():
    for name in ("QUANT_BINANCE_API_KEY", "QUANT_BINANCE_FUTURES_API_KEY", "QUANT_KRAKEN_API_SECRET",
                 "QUANT_TELEGRAM_BOT_TOKEN", "QUANT_TELEGRAM_CHAT_ID", "QUANT_ALERT_WEBHOOK_URL",
                 "QUANT_COINBASE_PASSPHRASE", "QUANT_MIRROR_PASSWORD"):
        assert is_secret_name(name), name
    for name in ("QUANT_SYMBOLS", "QUANT_BINANCE_BASE_URL", "QUANT_TELEGRAM_BASE_URL", "BINANCE_API_KEY",
                 "QUANT_DATA_DIR", "QUANT_DEX_PAIRS"):
        assert not is_secret_name(name), name


def test_every_form_of_a_value_is_replaced(key, monkeypatch):
    hook = f"https://hooks.example.com/services/T01/B02/{uuid.uuid4().hex}"
    monkeypatch.setenv("QUANT_ALERT_WEBHOOK_URL", hook)
    password = "pw-" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("QUANT_KRAKEN_BASE_URL", f"https://bob:{password}@mirror.example")
    texts = [
        f"plain {key} text", json.dumps({"k": key}), repr([key]), "q=" + quote(key, safe=""),
        f"posting to {hook} failed", f"path {hook.split('.com')[1]}", f"auth {password}",
        f"truncated ['{key[:20]}", f"{key[-15:]}'] from the start", key + key,
    ]
    for text in texts:
        clean = scrub(text)
        assert key not in clean and hook not in clean and password not in clean, clean
        assert key[:12] not in clean and key[-12:] not in clean, clean
        assert MASK in clean, text
    assert scrub("https://hooks.example.com/other/path") == "https://hooks.example.com/other/path"
    assert scrub("nothing secret here") == "nothing secret here"
    assert scrub(None) is None and scrub(42) == 42
    assert set(secret_values()) >= {key, hook, password}


def test_short_values_are_not_treated_as_secrets(monkeypatch):
    monkeypatch.setenv("QUANT_TELEGRAM_CHAT_ID", "42")
    assert scrub("answer 42") == "answer 42"


def test_extra_values_and_data(key):
    assert scrub("token abcdefgh123", extra=["abcdefgh123"]) == f"token {MASK}"
    data = scrub_data({"error": f"bad {key}", key: [1, (f"x{key}",)], "n": 3})
    assert key not in json.dumps(data) and data["n"] == 3


def test_provider_errors_are_scrubbed_when_created_and_cut_after(key):
    error = MalformedResponse(f"kline row has an unexpected shape: {[key]}")
    assert key not in str(error) and str(error).endswith(f"['{MASK}']")
    assert key not in str(ProviderError("a", key)) and key not in repr(ProviderError(key).args)
    assert key[:12] not in one_line(f"{'x' * 30}{key}", 40)


def test_exception_chains_are_scrubbed_in_place(key):
    try:
        try:
            raise KeyError(key)
        except KeyError:
            raise ValueError(f"wrapped {key}") from RuntimeError(f"cause {key}")  # noqa: B904
    except ValueError as exc:
        caught = exc
    assert scrub_exception(caught) is caught
    texts = [str(caught), str(caught.__cause__), str(caught.__context__)]
    assert all(key not in t for t in texts) and all(MASK in t for t in texts)

    class Stubborn(Exception):
        def __str__(self) -> str:
            return f"always {key}"

    replaced = scrub_exception(Stubborn())
    assert isinstance(replaced, ScrubbedError) and key not in str(replaced)

    @scrubbing_errors
    def failing() -> None:
        raise dg.Failure(description=f"failed with {key}")

    with pytest.raises(dg.Failure) as info:
        failing()
    assert key not in info.value.description


def test_one_line_names_the_root_cause_in_one_line(key):
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError:
            raise RuntimeError("TransactionContext Error: cannot rollback\nsecond line") from None
    except RuntimeError as exc:
        assert one_line(exc) == "RuntimeError: TransactionContext Error: cannot rollback"
    try:
        try:
            raise OSError(28, f"No space left on device {key}")
        except OSError as exc:
            raise RuntimeError("TransactionContext Error: cannot rollback") from exc
    except RuntimeError as exc:
        line = one_line(exc)
    assert line == f"RuntimeError: TransactionContext Error: cannot rollback (cause: OSError: [Errno 28] No space left on device {MASK})"
    assert "\n" not in line and len(one_line(RuntimeError("x" * 1000), 120)) == 120


def test_every_log_record_is_scrubbed_before_any_handler(key, caplog):
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("quant_assets.test")
    log.warning("key %s in args", key)
    log.info(f"key {key} in the message")
    try:
        raise ValueError(f"boom {key}")
    except ValueError:
        log.exception("failed")
    assert key not in caplog.text and key[:12] not in caplog.text
    assert caplog.text.count(MASK) >= 3


def test_a_password_in_a_base_url_is_kept_out_of_the_resource_config_and_put_back(monkeypatch, make_settings):
    password = "pw-" + uuid.uuid4().hex
    url = f"http://mirror-user:{password}@127.0.0.1:9"
    monkeypatch.setenv("QUANT_BINANCE_BASE_URL", url)
    basic = base64.b64encode(f"mirror-user:{password}".encode()).decode()
    assert scrub(f"Authorization: Basic {basic}") == f"Authorization: Basic {MASK}"
    settings = make_settings(env={"QUANT_BINANCE_BASE_URL": url})
    resource = ProvidersResource.for_settings(settings, QuantDuckDB(database=str(settings.duckdb_path)))
    assert password not in resource.settings_json and "mirror-user:***@" in resource.settings_json
    rebuilt = with_env_base_urls(settings_from_json(resource.settings_json))
    assert rebuilt.ingestion.base_url("binance") == url and rebuilt == settings
