"""Secret canaries: every secret the platform reads from the environment, set to a random value,
echoed back by misbehaving loopback upstreams in every way we know of, must be found 0 times in
anything the platform keeps or shows.

Echoes (``Fault.echo`` in the exchange server): malformed 200 bodies (one-value kline rows, the
shape that leaked the Binance key into ``ingestion_gaps.reason`` on main; a row that puts the key
across the 80th character, where messages are cut), 4xx/5xx error bodies, a Kraken ``error``
array, bodies that are not JSON, every request header echoed back as ``X-Echo-*`` response headers
and ``Retry-After``, and exception chains (a mirror adapter that wraps the raw answer in
``__cause__`` and ``__context__``; a provider that cannot even be built, whose chained error
escapes the asset into Dagster's step failure).

Runs: raw_candles (with its provenance check) through ``dg.materialize`` into a temp DuckDB with a
temp Dagster instance (``dg.instance_for_test``): a range whose first provider echoes (fallback
works), a range where every provider echoes (last-known-good days DEGRADED, a new day's gap, the
run fails), a run whose provider cannot be built; then three ticks of the polling sensor (spot and
DEX) on the same instance, their observations reported to it as the daemon would.

Searched: every text of every DuckDB table (each row cast to text), every event of every run and
the runless observations (serialized whole: messages, errors with their chains, metadata), every
file under the instance's directory (event and run databases, compute logs) and every cell of its
SQLite databases with compressed snapshots unpacked (the job snapshot holds resource config: a
mirror's base URL with a password is a canary too), captured stdout and
stderr (file-descriptor level, so threads and Dagster's console logger too), and every Python log
record. A canary counts when it appears whole or as a 12-character piece of its start or end.
"""

import base64
import json
import logging
import os
import sqlite3
import uuid
import zlib
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quant_assets.definitions import resources_for
from quant_assets.defs.ingestion.polling import build_polling_sensor
from quant_assets.defs.ingestion.raw_candles import (
    build_raw_candles,
    build_raw_candles_provenance_check,
)
from quant_assets.providers import registry
from quant_assets.providers.base import ProviderError
from quant_assets.providers.binance import binance_symbol
from quant_assets.providers.http import HttpProvider
from quant_assets.secrets import MASK
from quant_assets_tests.exchange_server import (
    FAST_RESILIENCE,
    Fault,
    base_url_env,
    dex_pair,
    start_server,
)

D1, D3 = "2024-03-04", "2024-03-06"
TICK0 = datetime(2024, 3, 6, 12, 0)
EVM = "0x" + "AbCdEf0123456789" * 2 + "AbCdEf01"
SOLANA = "So1anaPairAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1"
MISSING = "So1anaPairZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ9"


def _token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


@pytest.fixture
def canaries(monkeypatch) -> dict[str, str]:
    """Env name -> the random part of its value (what must never be seen); the env gets it set."""
    parts = {name: _token() for name in (
        "QUANT_BINANCE_API_KEY", "QUANT_COINBASE_API_KEY", "QUANT_KRAKEN_API_SECRET",
        "QUANT_DEXSCREENER_API_KEY", "QUANT_BINANCE_FUTURES_API_KEY", "QUANT_FILES_API_KEY",
        "QUANT_TELEGRAM_BOT_TOKEN", "QUANT_ALERT_WEBHOOK_URL",
    )}
    parts["QUANT_TELEGRAM_CHAT_ID"] = "-100" + str(uuid.uuid4().int)[:12]
    parts["QUANT_BINANCE_BASE_URL"] = _token()  # the password of an authenticated mirror (set with the server)
    for name, part in parts.items():
        if name != "QUANT_BINANCE_BASE_URL":
            value = f"http://127.0.0.1:9/services/T0/B0/{part}" if name == "QUANT_ALERT_WEBHOOK_URL" else part
            monkeypatch.setenv(name, value)
    return parts


def count_canaries(text: str, canaries: dict[str, str]) -> int:
    found = 0
    basic = base64.b64encode(f"mirror-user:{canaries['QUANT_BINANCE_BASE_URL']}".encode()).decode()
    for part in [*canaries.values(), basic[-40:]]:  # the mirror password as sent in Authorization too
        found += text.count(part) + text.count(part[:12]) + text.count(part[-12:])
    return found


class EchoMirror(HttpProvider):
    """A mirror adapter as a user might write one: it wraps the raw answer it did not understand
    in its exception chain (``__cause__`` and ``__context__``) instead of scrubbing it."""

    name = "files"
    rate_per_s = 1000.0
    burst = 1000.0
    api_key_header = "X-MBX-APIKEY"

    def fetch_candles(self, symbol, interval, start, end):
        response = self.client.get("/mirror/klines", params={"symbol": binance_symbol(symbol)})
        try:
            return json.loads(response.text)["klines"]
        except (KeyError, ValueError, TypeError):
            raise ProviderError("files: the mirror answered something that is not klines") from ValueError(
                f"raw answer {response.status_code} {dict(response.headers)}: {response.text}")


def _broken_mirror(settings):
    key, hook = os.environ["QUANT_FILES_API_KEY"], os.environ["QUANT_ALERT_WEBHOOK_URL"]
    try:
        {}[f"{hook}?key={key}"]  # a lookup that fails on the key (the context)
    except KeyError:  # the KeyError is the context, this ValueError the cause
        raise RuntimeError("files: the mirror adapter could not start") from ValueError(f"no mirror for {key}")


@pytest.fixture
def server(canaries, monkeypatch):
    srv = start_server(["BTC/USDT", "ETH/USDT"])
    monkeypatch.setenv("QUANT_BINANCE_BASE_URL", f"http://mirror-user:{canaries['QUANT_BINANCE_BASE_URL']}@"
                                                 f"127.0.0.1:{srv.server_address[1]}")
    srv.canaries = [v for k, v in sorted(canaries.items())]
    srv.now = TICK0
    srv.dex_pairs = {f"ethereum/{EVM}": dex_pair("ethereum", EVM), f"solana/{SOLANA}": dex_pair("solana", SOLANA)}
    yield srv
    srv.stop()


def _echo_everything(server, klines_ok=False, coinbase_ok=True):
    server.clear_faults()
    shapes = [(200, "rows"), (200, "padded"), (401, "object"), (200, "text"), (503, "object"), (429, "text"),
              (403, "object"), (418, "padded")]
    if not klines_ok:
        for status, shape in shapes:
            server.fault("/api/v3/klines", Fault.echo(status, shape), times=3 if status >= 500 or status == 429 else 1)
        server.fault("/api/v3/klines", Fault.echo(200, "rows"), repeat=True)
    server.fault("/mirror/", Fault.echo(200, "text"), times=2)
    server.fault("/mirror/", Fault.echo(500, "object"), repeat=True)
    if not coinbase_ok:
        server.fault("/products/", Fault.echo(400, "object"), times=1)
        server.fault("/products/", Fault.echo(503, "object"), repeat=True)
    server.fault("/api/v3/ticker/bookTicker", Fault.echo(401, "object"), times=1)
    server.fault("/api/v3/ticker/bookTicker", Fault.echo(200, "padded"), repeat=True)
    server.fault("/0/public/Ticker", Fault.echo(200, "kraken"), repeat=True)
    server.fault("/latest/dex/", Fault.echo(200, "text"), times=1)
    server.fault("/latest/dex/", Fault.echo(502, "object"), repeat=True)


def _materialize(settings, instance, start, end):
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return dg.materialize(
        [build_raw_candles(settings), build_raw_candles_provenance_check(settings)],
        partition_key=start if start == end else None, tags=tags if start != end else {},
        resources=resources_for(settings), instance=instance, raise_on_error=False,
    )


def _sensor_ticks(settings, instance, server):
    clock = [TICK0 + timedelta(seconds=5)]
    sensor = build_polling_sensor(settings, clock=lambda: clock[0])
    cursor = None
    for step, faults in ((0, False), (1, True), (5, True)):  # clean, then echoes (DEGRADED), then a jump (gap)
        clock[0] = TICK0 + timedelta(minutes=step, seconds=5)
        server.now = TICK0 + timedelta(minutes=step)
        if faults:
            _echo_everything(server)
        else:
            server.clear_faults()
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources_for(settings)) as context:
            result = sensor(context)
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
        cursor = result.cursor
    return cursor


def _sqlite_text(path: Path) -> str:
    """Every cell of a Dagster SQLite storage file, compressed snapshots (zlib) unpacked."""
    cells = []
    with closing(sqlite3.connect(path)) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute(f'SELECT * FROM "{table}"').fetchall():
                for cell in row:
                    if isinstance(cell, bytes):
                        try:
                            cell = zlib.decompress(cell)
                        except zlib.error:
                            pass
                        cell = cell.decode("utf-8", errors="replace")
                    cells.append(str(cell))
    return "\n".join(cells)


def _tables(path: Path) -> tuple[int, int, str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        rows = [(name, text) for name in names
                for (text,) in conn.execute(f'SELECT CAST(t AS VARCHAR) FROM "{name}" AS t').fetchall()]
    return len(names), len(rows), "\n".join(f"{name}: {text}" for name, text in rows)


def test_no_canary_reaches_tables_events_logs_or_streams(make_settings, server, canaries, monkeypatch,
                                                         caplog, capfd, tmp_path):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setitem(registry.CANDLE_PROVIDER_FACTORIES, "files",
                        lambda settings: EchoMirror(server.url, settings.ingestion.resilience))
    settings = make_settings(env={
        **base_url_env(server), "QUANT_BINANCE_BASE_URL": os.environ["QUANT_BINANCE_BASE_URL"],
        "QUANT_SYMBOLS": "BTC/USDT,ETH/USDT", "QUANT_CANDLE_PROVIDERS": "binance,files,coinbase",
        "QUANT_SPOT_PROVIDERS": "binance,coinbase,kraken", "QUANT_DEX_PROVIDERS": "dexscreener",
        "QUANT_DEX_PAIRS": f"ethereum/{EVM.lower()},solana/{SOLANA},solana/{MISSING}",
        "QUANT_FILES_DIR": str(tmp_path),  # the mirror stands in for the files provider
    }, resilience={**FAST_RESILIENCE, "breaker_failures": 1000, "rate_scale": 50})

    with dg.instance_for_test() as instance:
        _echo_everything(server)                        # binance and the mirror echo; coinbase delivers
        first = _materialize(settings, instance, D1, "2024-03-05")
        _echo_everything(server, coinbase_ok=False)     # everything echoes: D1, D2 last-known-good, D3 a gap
        second = _materialize(settings, instance, D1, D3)
        monkeypatch.setitem(registry.CANDLE_PROVIDER_FACTORIES, "files", _broken_mirror)
        third = _materialize(settings, instance, D3, D3)  # the chained error escapes the asset
        _sensor_ticks(settings, instance, server)

        assert first.success and not second.success and not third.success
        failure = second.get_step_failure_events()[0].step_failure_data.user_failure_data
        assert failure.description.startswith("raw_candles: 1 of 3 day(s) not written, gap recorded")
        assert D3 in failure.description and "written: 2024-03-04, 2024-03-05" in failure.description
        escaped = third.get_step_failure_events()[0].step_failure_data.error
        assert "could not start" in escaped.to_string() and "no mirror for ***" in escaped.to_string()  # chain kept

        events = [entry for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]
        observations = instance.fetch_observations(dg.AssetKey("spot_quotes"), limit=100).records
        event_text = "\n".join(dg.serialize_value(e) for e in events)
        event_text += "\n".join(dg.serialize_value(r.event_log_entry) for r in observations)
        files = [p for p in Path(instance.root_directory).rglob("*") if p.is_file()]
        file_text = "\n".join([p.read_bytes().decode("utf-8", errors="replace") for p in files]
                              + [_sqlite_text(p) for p in files if p.suffix == ".db"])

    n_tables, n_rows, table_text = _tables(settings.duckdb_path)
    captured = capfd.readouterr()
    records = "\n".join(
        f"{r.getMessage()}\n{r.exc_text or ''}\n{logging.Formatter().format(r)}" for r in caplog.records)

    # The echoes were sent and reached our texts, as ***.
    assert server.echoes >= 30, server.echoes
    assert any(path.startswith("/api/v3/") and h.get("authorization", "").startswith("Basic ")
               for path, _, h in server.requests)  # the mirror password went out (and was echoed back)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM ingestion_gaps WHERE kind = 'candles'").fetchall()]
        degraded, rows = conn.execute("SELECT count(*) FILTER (fetch_status = 'DEGRADED'), count(*) FROM raw_candles "
                                      "WHERE ts < '2024-03-06'").fetchone()
        errors = [r[0] for r in conn.execute("SELECT DISTINCT error FROM raw_candles WHERE error IS NOT NULL").fetchall()]
        dex = conn.execute("SELECT pair, fetch_status FROM dex_snapshots ORDER BY ts, pair").fetchall()
    assert len(reasons) == 2 and all(MASK in r for r in reasons), reasons
    assert degraded == rows > 2 * 2 * 1400 and errors and any(MASK in e for e in errors), errors
    assert (f"ethereum/{EVM.lower()}", "OK") in dex  # the lowercase EVM address matched the checksummed answer

    places = {
        "duckdb": table_text, "events": event_text, "instance_files": file_text,
        "stdout": captured.out, "stderr": captured.err, "log_records": records,
    }
    found = {name: count_canaries(text, canaries) for name, text in places.items()}
    figures = {"tables": n_tables, "table_rows": n_rows, "events": len(events) + len(observations),
               "instance_files": len(files), "streams": 2, "log_records": len(caplog.records),
               "canaries": len(canaries), "echoes_sent": server.echoes, "found": found}
    print(f"\ncanary figures: {json.dumps(figures)}")
    assert found == dict.fromkeys(places, 0), figures
