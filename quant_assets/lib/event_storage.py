"""The local instance's event log: Dagster's SQLite storage with its connections kept open.

Dagster's :class:`SqliteEventLogStorage` builds a new SQLAlchemy engine, opens the SQLite file
and disposes of both again for every event it stores, and a check evaluation is three such
round trips (the run's shard, the index shard, the check-execution row). A range run records one
evaluation per day and check (a 60-day demo about 5,800, a year's backfill of the bars about
13,000), so that set-up cost was most of what the checks cost (``benchmarks/README_profile.md``).
This storage keeps one engine, with a small pool of open connections, per shard it writes, for
the most recently used shards; the files, schema and rows are exactly Dagster's, so the UI, the
daemon and ``dagster`` commands read them as before, and an instance configured with Dagster's
own class can read a home this one wrote (and the other way round).

Every write is still its own committed transaction, as in Dagster's storage: a killed process
loses no stored event.
"""

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._config import StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.instance.ref import _event_logs_directory
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

OPEN_SHARDS = 8
"""Shards whose engine stays open: the index and the few runs a process writes at a time."""


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` that reuses an engine per shard (configured in
    ``dagster.yaml`` as ``event_log_storage``, with the same ``base_dir``)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._tables_present: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> "PooledSqliteEventLogStorage":
        """``dagster_home``: the instance's home; the shards go where Dagster's default puts them."""
        return cls(_event_logs_directory(config_value["dagster_home"]), inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None and os.path.exists(self.path_for_shard(shard)):
                self._engines.move_to_end(shard)
                return engine
            if engine is not None:  # its file was deleted (wipe): start afresh
                engine.dispose()
                self._initialized_dbs.discard(shard)
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=2,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            self._engines[shard] = engine
            while len(self._engines) > OPEN_SHARDS:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Whether the index shard has ``table_name``: asked before every check evaluation is
        stored, and a table once there stays (migrations add tables, never drop them)."""
        if table_name in self._tables_present:
            return True
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            present = bool(engine.dialect.has_table(conn, table_name))
        if present:
            self._tables_present.add(table_name)
        return present

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
            self._tables_present.clear()

    def wipe(self) -> None:
        self._dispose_engines()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
