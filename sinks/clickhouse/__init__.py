"""The ClickHouse sink (`sflowpipe clickhouse`) and `sflowpipe sql`."""

from .sink import ClickHouseService, ClickHouseSink, add_arguments, run
from .sql import add_sql_arguments, run_sql

__all__ = ["ClickHouseService", "ClickHouseSink", "add_arguments", "run", "add_sql_arguments", "run_sql"]
