"""Schema migrations keep every stored row: the old day-pooled IC survives the validation tables."""

import duckdb

from quant_assets.resources.migrations import MIGRATIONS, apply_migrations


def test_the_old_signal_ic_is_kept_with_its_rows_when_validation_replaces_it():
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL)")
        before = [m for m in MIGRATIONS if m[0] < 33]
        for version, name, ddl in before:
            conn.execute(ddl)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, name])
        conn.execute("INSERT INTO signal_ic VALUES ('2024-03-01', 'ema_cross_9_21', 0.12, 0.10, 24), "
                     "('2024-03-02', 'ema_cross_9_21', NULL, -0.05, 24)")
        assert apply_migrations(conn) == [m[0] for m in MIGRATIONS if m[0] >= 33]
        kept = conn.execute("SELECT * FROM signal_ic_daily_v1 ORDER BY day").fetchall()
        assert [(str(r[0].date()), r[1], r[2], r[3], r[4]) for r in kept] == [
            ("2024-03-01", "ema_cross_9_21", 0.12, 0.10, 24), ("2024-03-02", "ema_cross_9_21", None, -0.05, 24)]
        columns = [r[0] for r in conn.execute("DESCRIBE signal_ic").fetchall()]
        assert columns == ["ts", "signal_name", "kind", "horizon", "ic", "rank_ic", "n_assets"]
        assert apply_migrations(conn) == []


def test_trials_registry_and_alerts_keep_their_rows_when_experiments_arrive():
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL)")
        for version, name, ddl in (m for m in MIGRATIONS if m[0] != 36):
            conn.execute(ddl)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, name])
        conn.execute("INSERT INTO backtest_trials VALUES ('u1', '1h', 'ema_9_21', 'signal', '{\"kind\": \"signal\"}', "
                     "'2024-03-05')")
        conn.execute("INSERT INTO experiment_registry VALUES ('e1', '2024-03-05', 'h', 'ema_9_21', NULL, 'm1', 'p1')")
        conn.execute("INSERT INTO alerts VALUES ('a1', 'check:x:y', 'asset_check', 'WARN', 'OPEN', 'msg', "
                     "'2024-03-05', '2024-03-05', 1, NULL, 'SENT', 'NOT_CONFIGURED', NULL)")
        assert apply_migrations(conn) == [36]
        trials = conn.execute("SELECT cost_mode, strategy, experiment_id, first_day::DATE::VARCHAR FROM backtest_trials "
                              "ORDER BY cost_mode").fetchall()
        assert trials == [("clean", "ema_9_21", None, "2024-03-05"), ("realistic", "ema_9_21", None, "2024-03-05")]
        assert conn.execute("SELECT experiment_id, fold FROM experiment_registry_v1").fetchall() == [("e1", "2024-03-05")]
        assert conn.execute("SELECT alert_id, source, message FROM alerts").fetchall() == [("a1", "asset_check", "msg")]
        conn.execute("INSERT INTO alerts VALUES ('a2', 'governance:stale_results', 'governance', 'WARN', 'OPEN', 'm', "
                     "'2024-03-05', '2024-03-05', 1, NULL, 'SENT', 'NOT_CONFIGURED', NULL)")
