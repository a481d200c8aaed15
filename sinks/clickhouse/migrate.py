"""Numbered schema migrations (migrations/NNNN_name.sql), applied in order, recorded in schema_migrations.

A migration file is a list of statements separated by ``;`` at the end of a line, with the
placeholders ``{database}``, ``{ttl_days}`` and ``{rollup_ttl_days}``. A released file is never
edited: a change is a new file. Statements are written ``IF NOT EXISTS`` so that a migration
interrupted half-way is simply run again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from sflowpipe.settings import ClickHouseSettings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# table -> (TTL expression, setting that sets its days): re-applied when the setting changes
TTL_TABLES = {
    "flow_samples": ("toDateTime(time) + toIntervalDay({days})", "ttl_days"),
    "counters": ("toDateTime(time) + toIntervalDay({days})", "ttl_days"),
    "metrics": ("toDateTime(time) + toIntervalDay({days})", "ttl_days"),
    "events": ("toDateTime(time) + toIntervalDay({days})", "ttl_days"),
    "active_flows": ("toDateTime(time) + toIntervalDay({days})", "ttl_days"),
    "flows_1m": ("time + toIntervalDay({days})", "rollup_ttl_days"),
    "flows_1h": ("time + toIntervalDay({days})", "rollup_ttl_days"),
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self, database: str, ttl_days: int, rollup_ttl_days: int) -> list[str]:
        text = self.path.read_text()
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        text = (text.replace("{database}", database).replace("{ttl_days}", str(ttl_days))
                .replace("{rollup_ttl_days}", str(rollup_ttl_days)))
        return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


def applied_versions(client, database: str) -> set[int]:
    rows = client.query(f"SELECT version FROM {database}.schema_migrations").result_rows
    return {r[0] for r in rows}


def migrate(client, settings: ClickHouseSettings, upto: int | None = None) -> list[int]:
    """Create the database and apply every migration not yet recorded (up to ``upto``); return those applied."""
    db = settings.database
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, "
                   f"applied_at DateTime('UTC') DEFAULT now()) ENGINE = MergeTree ORDER BY version")
    done = applied_versions(client, db)
    applied = []
    for m in migrations():
        if m.version in done or (upto is not None and m.version > upto):
            continue
        for statement in m.statements(db, settings.ttl_days, settings.rollup_ttl_days):
            client.command(statement)
        client.command(f"INSERT INTO {db}.schema_migrations (version, name) VALUES ({m.version}, '{m.name}')")
        log.info("clickhouse: applied migration %04d_%s", m.version, m.name)
        applied.append(m.version)
    if upto is None:
        apply_ttls(client, settings)
    return applied


def apply_ttls(client, settings: ClickHouseSettings) -> None:
    """Make each table's TTL match the settings (tables were created with the values of that day)."""
    db = settings.database
    rows = dict(client.query("SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
                             parameters={"db": db}).result_rows)
    for table, (expr, setting) in TTL_TABLES.items():
        days = getattr(settings, setting)
        if table in rows and f"toIntervalDay({days})" not in rows[table]:
            client.command(f"ALTER TABLE {db}.{table} MODIFY TTL {expr.format(days=days)}",
                           settings={"materialize_ttl_after_modify": 0})
            log.info("clickhouse: %s TTL set to %d days", table, days)
