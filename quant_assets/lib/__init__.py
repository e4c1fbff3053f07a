"""Dagster-side code every stage shares: the partitioned-asset and daily-check helpers, the
metadata and plot writers, the SQL-model loader and the providers resource."""
