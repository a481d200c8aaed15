"""History from ClickHouse: the API's read access to the tables the ClickHouse sink writes, and
the queries behind ``/history/*/json`` (top N flows over time, interface counters, samples per
agent, a source -> destination Sankey).

An embedded ``chdb://DIR`` engine belongs to the sink process alone: the API goes through the
sink's loopback SQL port (sinks/clickhouse/sql.py, as ``sflowpipe sql --data-dir`` does); a
server DSN (http://, https://) is queried with clickhouse-connect. Queries run on a small thread
pool with a timeout, so a slow or absent ClickHouse is a 503, never a hung request.

No user text reaches SQL as typed: dimensions come from a fixed table of columns, and every
filter value is parsed strictly (an address, a number, a string) and written back as a literal
of its column's type.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import re
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from sflowpipe.settings import ClickHouseSettings

RANGES = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
MAX_SPAN_S = 400 * 86400  # the rollups' default TTL: nothing older is kept
NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
              2 * 86400, 7 * 86400]
MAX_POINTS = 300  # a step is the smallest nice one giving at most this many points
MAX_N = 50
VALUES = {"bytes": ("bytes/s", 1), "bits": ("bits/s", 8), "frames": ("frames/s", 1)}
PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "ICMPv6", 132: "SCTP"}


@dataclass(frozen=True)
class Dimension:
    column: str
    kind: str  # "ip", "int" or "str"


# the flow-sample columns a user can group or filter by (sinks/clickhouse/migrations/*.sql)
DIMENSIONS: dict[str, Dimension] = {name: Dimension(name, kind) for name, kind in [
    ("agent", "ip"), ("exporter", "ip"), ("sub_agent_id", "int"), ("source_id_index", "int"),
    ("in_if", "int"), ("out_if", "int"), ("src_ip", "ip"), ("dst_ip", "ip"), ("next_hop", "ip"),
    ("protocol", "int"), ("src_port", "int"), ("dst_port", "int"), ("tcp_flags", "int"),
    ("icmp_type", "int"), ("icmp_code", "int"), ("src_country", "str"), ("dst_country", "str"),
    ("src_asn", "int"), ("dst_asn", "int"), ("src_as_name", "str"), ("dst_as_name", "str"),
    ("src_mac", "str"), ("dst_mac", "str"), ("vlan", "int"), ("src_vlan", "int"), ("dst_vlan", "int"),
    ("eth_type", "int"), ("ip_version", "int"), ("tos", "int"), ("ttl", "int"), ("vni", "int"),
    ("src_mask_len", "int"), ("dst_mask_len", "int"), ("sampling_rate", "int"), ("frame_length", "int"),
]}
ROLLUP_1H = {"agent", "in_if", "out_if", "protocol", "src_country", "dst_country", "src_asn", "dst_asn"}
ROLLUP_1M = ROLLUP_1H | {"src_ip", "dst_ip"}
IF_COUNTERS = ["if_in_octets", "if_out_octets", "if_in_errors", "if_out_errors", "if_in_discards",
               "if_out_discards", "if_speed"]
COUNTER_UNITS = {"in_bps": "bits/s", "out_bps": "bits/s", "in_utilization": "%", "out_utilization": "%",
                 "in_errors": "/s", "out_errors": "/s", "in_discards": "/s", "out_discards": "/s"}


class HistoryError(Exception):
    """A request history cannot answer: ``status`` 400 (the request's fault, ``field`` names the
    parameter) or 503 (ClickHouse away)."""

    def __init__(self, status: int, message: str, field: str | None = None, position: int | None = None,
                 token: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail: dict[str, Any] = {"error": message}
        if field:
            self.detail["field"] = field
        if position is not None:
            self.detail["position"] = position
        if token is not None:
            self.detail["token"] = token


def bad(message: str, field: str, **where: Any) -> HistoryError:
    return HistoryError(400, message, field, **where)


def unavailable(message: str) -> HistoryError:
    return HistoryError(503, message)


# ---------------------------------------------------------------- ClickHouse access

class ClickHouseReader:
    """Read queries on the ClickHouse the sink writes (its SQL port for chdb://DIR, else a client)."""

    def __init__(self, cfg: ClickHouseSettings, timeout: float = 20.0) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cfg.database):
            raise ValueError(f"sinks.clickhouse.database {cfg.database!r} is not a plain name")
        self.cfg = cfg
        self.timeout = timeout
        self.database = cfg.database
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="history")
        self._client = None

    def rows(self, sql: str) -> list[dict]:
        """Run ``sql`` (blocking) and return its rows; HistoryError(503) when ClickHouse cannot answer."""
        sql = f"{sql}\nSETTINGS max_execution_time = {int(self.timeout)}"
        dsn = self.cfg.dsn
        if dsn.startswith("chdb:"):
            out = self._via_sink(dsn, sql)
        else:
            out = self._via_client(dsn, sql)
        return [json.loads(line) for line in out.decode().splitlines() if line.strip()]

    def _via_sink(self, dsn: str, sql: str) -> bytes:
        from sflowpipe.clickhouse import owner, query_via, resolve_dsn

        _, directory = resolve_dsn(dsn)
        if directory is None:
            raise unavailable(f"ClickHouse {dsn} is in memory, private to the sink process: history needs a "
                              "chdb://DIR or a server DSN")
        info = owner(directory)
        if info is None:
            raise unavailable(f"ClickHouse unavailable: no ClickHouse sink is running on {directory} "
                              "(start `sflowpipe clickhouse`)")
        try:
            return query_via(info, sql, "json", timeout=self.timeout)
        except urllib.error.URLError as e:
            raise unavailable(f"ClickHouse unavailable: the sink's SQL port {info.get('port')} for {directory}: "
                              f"{getattr(e, 'reason', e)}") from None
        except (TimeoutError, OSError) as e:
            raise unavailable(f"ClickHouse unavailable: the sink's SQL port for {directory}: {e or 'timed out'}") \
                from None
        except RuntimeError as e:  # the engine refused the query: ours, not the user's
            raise HistoryError(500, f"ClickHouse query failed: {str(e).strip()[:500]}") from None

    def _via_client(self, dsn: str, sql: str) -> bytes:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        try:
            if self._client is None:
                self._client = clickhouse_connect.get_client(
                    dsn=dsn, autogenerate_session_id=False, connect_timeout=min(5, self.timeout),
                    send_receive_timeout=self.timeout)
            return self._client.raw_query(sql, fmt="JSONEachRow")
        except OperationalError as e:
            self._client = None
            raise unavailable(f"ClickHouse unavailable at {_safe_dsn(dsn)}: {_first_line(e)}") from None
        except DatabaseError as e:
            raise HistoryError(500, f"ClickHouse query failed: {_first_line(e)}") from None
        except Exception as e:  # a refused connection surfaces as other types on some versions
            self._client = None
            raise unavailable(f"ClickHouse unavailable at {_safe_dsn(dsn)}: {_first_line(e)}") from None

    async def run(self, fn: Callable[[], Any]) -> Any:
        """``fn`` (which calls ``rows``) off the event loop, cut off after the timeout."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self.pool, fn), self.timeout + 1)
        except asyncio.TimeoutError:
            raise unavailable(f"ClickHouse unavailable: no answer within {self.timeout:.0f} s") from None

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _safe_dsn(dsn: str) -> str:
    return re.sub(r"//[^@/]*@", "//", dsn)  # never a password in an error


# ---------------------------------------------------------------- parameters

@dataclass(frozen=True)
class Window:
    start: int  # epoch s, a multiple of step
    end: int  # exclusive, a multiple of step
    step: int

    @property
    def times(self) -> list[int]:
        return list(range(self.start, self.end, self.step))

    def where(self, column: str = "time", back: int = 0) -> str:
        return (f"{column} >= toDateTime({self.start - back}, 'UTC') AND "
                f"{column} < toDateTime({self.end}, 'UTC')")


def window(query: dict[str, str], min_step: int = 1, now: float | None = None, lag: float = 0.0) -> Window:
    """The time window of ``range=`` (or ``from=``/``to=``) cut into steps: whole steps only, the
    newest one ending at or before ``to`` (a step still filling would look like a drop); a range
    back from now ends ``lag`` s ago (rows the sink has not flushed yet)."""
    now = (time.time() if now is None else now) - lag
    if "from" in query or "to" in query:
        if "range" in query:
            raise bad("give range or from/to, not both", "range")
        start, end = _epoch(query, "from"), _epoch(query, "to", now)
        if end <= start:
            raise bad("to must be after from", "to")
        if end - start > MAX_SPAN_S:
            raise bad(f"from/to span more than {MAX_SPAN_S // 86400} days", "from")
    else:
        r = query.get("range", "15m")
        if r not in RANGES:
            raise bad(f"range must be one of {', '.join(RANGES)} (or from=EPOCH_S&to=EPOCH_S), not {r!r}", "range")
        end, start = now, now - RANGES[r]  # now: minus the lag
    step = pick_step(end - start, min_step)
    last = int(end // step) * step
    first = int(start // step) * step
    if last <= first:
        last = first + step
    return Window(first, last, step)


def pick_step(span: float, min_step: int = 1) -> int:
    want = max(span / MAX_POINTS, min_step)
    return next((s for s in NICE_STEPS if s >= want), NICE_STEPS[-1])


def _epoch(query: dict[str, str], name: str, default: float | None = None) -> float:
    text = query.get(name)
    if text is None:
        if default is None:
            raise bad(f"{name} is missing (epoch seconds)", name)
        return default
    try:
        v = float(text)
    except ValueError:
        raise bad(f"{name} must be epoch seconds, not {text!r}", name) from None
    if not math.isfinite(v) or v < 0 or v > 4_102_444_800:  # 2100-01-01
        raise bad(f"{name} must be epoch seconds between 0 and 4102444800, not {text!r}", name)
    return v


def dimensions(text: str | None, default: str = "src_ip,dst_ip", at_least: int = 1) -> list[str]:
    names = [d.strip() for d in (text if text is not None else default).split(",") if d.strip()]
    if len(names) < at_least:
        raise bad(f"dimensions: give at least {at_least} of {', '.join(DIMENSIONS)}", "dimensions")
    for d in names:
        if d not in DIMENSIONS:
            raise bad(f"dimensions: unknown dimension {d!r}; one of {', '.join(DIMENSIONS)}", "dimensions",
                      token=d)
    if len(set(names)) != len(names):
        raise bad("dimensions: a dimension is named twice", "dimensions")
    if len(names) > 6:
        raise bad("dimensions: at most 6", "dimensions")
    return names


def top_n(text: str | None, default: int = 10, field: str = "n", most: int = MAX_N) -> int:
    try:
        n = int(text) if text is not None else default
    except ValueError:
        raise bad(f"{field} must be an integer, not {text!r}", field) from None
    if not 1 <= n <= most:
        raise bad(f"{field} must be between 1 and {most}, not {n}", field)
    return n


def value_kind(text: str | None) -> str:
    v = text or "bytes"
    if v not in VALUES:
        raise bad(f"value must be bytes, bits or frames, not {v!r}", "value")
    return v


# ---------------------------------------------------------------- literals and the filter language

def ip_literal(text: str) -> str:
    """A validated address as a ClickHouse IPv6 literal (IPv4 as the sink stores it: ::ffff:a.b.c.d)."""
    a = ipaddress.ip_address(text)
    if a.version == 4:
        a = ipaddress.IPv6Address("::ffff:" + str(a))
    return f"toIPv6('{a}')"


def ip_network(text: str) -> str:
    n = ipaddress.ip_network(text, strict=False)
    if n.version == 4:
        n = ipaddress.IPv6Network(f"::ffff:{n.network_address}/{96 + n.prefixlen}")
    return str(n)


def str_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal(dim: Dimension, value: Any) -> str:
    """``value`` (typed by a user or read back from ClickHouse) as a literal of the column's type;
    ValueError when it is not one."""
    if dim.kind == "ip":
        return ip_literal(str(value))
    if dim.kind == "int":
        v = int(str(value), 0) if isinstance(value, str) else int(value)
        if not 0 <= v <= 2**32 - 1:
            raise ValueError(f"{value} is out of range")
        return str(v)
    s = str(value)
    if len(s) > 256 or any(ord(c) < 32 for c in s):
        raise ValueError("not a plain string")
    return str_literal(s)


_TOKEN = re.compile(r"\s*(?:(?P<op>!=|<=|>=|==|=|<|>|&&|\|\||[&|!(),])|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
                    r"|(?P<word>[^\s=!<>&|(),'\"]+))")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise bad(f"filter: unexpected {text[start]!r}", "filter", position=start, token=text[start])
        kind = m.lastgroup or "op"
        tok = m.group(kind)
        out.append((kind, tok, m.start(kind)))
        pos = m.end()
    return out


class FilterParser:
    """``dim = value``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``dim in (v, ...)``, ``not in``,
    combined with and/&, or/|, not/! and parentheses. Addresses take a prefix (``10.0.0.0/8``).
    Compiles to SQL over the whitelisted columns; ``columns`` are the ones it names."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.columns: set[str] = set()

    def parse(self) -> str:
        if not self.toks:
            return ""
        sql = self._or()
        if self.i < len(self.toks):
            _, tok, pos = self.toks[self.i]
            raise bad(f"filter: unexpected {tok!r} (expected and, or or the end)", "filter", position=pos, token=tok)
        return sql

    def _peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _is(self, *words: str) -> bool:
        t = self._peek()
        return t is not None and t[0] != "str" and t[1].lower() in words

    def _take(self) -> tuple[str, str, int]:
        t = self._peek()
        if t is None:
            raise bad("filter: ends too early", "filter", position=len(self.text))
        self.i += 1
        return t

    def _or(self) -> str:
        parts = [self._and()]
        while self._is("or", "|", "||"):
            self._take()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._not()]
        while self._is("and", "&", "&&"):
            self._take()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _not(self) -> str:
        if self._is("not", "!"):
            self._take()
            return f"NOT {self._not()}"
        return self._atom()

    def _atom(self) -> str:
        kind, tok, pos = self._take()
        if tok == "(" and kind == "op":
            inner = self._or()
            k, t, p = self._take() if self._peek() else ("", "", len(self.text))
            if t != ")":
                raise bad("filter: missing ')'", "filter", position=p, token=t or None)
            return f"({inner})"
        if kind != "word" or tok not in DIMENSIONS:
            raise bad(f"filter: {tok!r} is not a dimension; one of {', '.join(DIMENSIONS)}", "filter",
                      position=pos, token=tok)
        dim = DIMENSIONS[tok]
        self.columns.add(tok)
        negate = False
        if self._is("not"):
            self._take()
            negate = True
            if not self._is("in"):
                t = self._peek()
                raise bad("filter: 'not' after a dimension must be 'not in'", "filter",
                          position=t[2] if t else len(self.text))
        if self._is("in"):
            self._take()
            k, t, p = self._take()
            if t != "(":
                raise bad("filter: expected '(' after in", "filter", position=p, token=t)
            values = [self._value(dim)]
            while self._is(","):
                self._take()
                values.append(self._value(dim))
            k, t, p = self._take() if self._peek() else ("", "", len(self.text))
            if t != ")":
                raise bad("filter: missing ')' after the values", "filter", position=p, token=t or None)
            if dim.kind == "ip" and any(v[0] == "net" for v in values):
                parts = [self._compare(dim, "=", v) for v in values]
                sql = "(" + " OR ".join(parts) + ")"
                return f"NOT {sql}" if negate else sql
            sql = f"{dim.column} {'NOT IN' if negate else 'IN'} ({', '.join(v[1] for v in values)})"
            return sql
        k, op, p = self._take() if self._peek() else ("", "", len(self.text))
        if k != "op" or op not in ("=", "==", "!=", "<", "<=", ">", ">="):
            raise bad(f"filter: expected a comparison (=, !=, <, >, in) after {tok}", "filter", position=p,
                      token=op or None)
        if dim.kind != "int" and op not in ("=", "==", "!="):
            raise bad(f"filter: {tok} takes = or != (or in), not {op}", "filter", position=p, token=op)
        return self._compare(dim, op, self._value(dim))

    def _value(self, dim: Dimension) -> tuple[str, str]:
        """("lit", SQL literal) or, for an address prefix, ("net", normalized prefix)."""
        kind, tok, pos = self._take() if self._peek() else ("", "", len(self.text))
        if kind not in ("word", "str"):
            raise bad(f"filter: expected a value for {dim.column}", "filter", position=pos, token=tok or None)
        text = tok
        if kind == "str":
            text = re.sub(r"\\(.)", r"\1", tok[1:-1])
        try:
            if dim.kind == "ip" and "/" in text:
                return "net", ip_network(text)
            return "lit", literal(dim, text)
        except ValueError:
            what = {"ip": "an IP address or prefix", "int": "a whole number from 0 to 4294967295",
                    "str": "a string"}[dim.kind]
            raise bad(f"filter: {text!r} is not {what} (for {dim.column})", "filter", position=pos,
                      token=tok) from None

    def _compare(self, dim: Dimension, op: str, value: tuple[str, str]) -> str:
        op = "=" if op == "==" else op
        kind, v = value
        if kind == "net":
            sql = f"isIPAddressInRange(toString({dim.column}), '{v}')"
            return f"NOT {sql}" if op == "!=" else sql
        return f"{dim.column} {op} {v}"


def parse_filter(text: str | None) -> tuple[str, set[str]]:
    if text is None or not text.strip():
        return "", set()
    if len(text) > 2000:
        raise bad("filter: longer than 2000 characters", "filter")
    p = FilterParser(text)
    return p.parse(), p.columns


# ---------------------------------------------------------------- values read back

def show(dim: str, value: Any) -> Any:
    """A dimension's value as the API answers it: IPv4 as a.b.c.d, numbers as numbers."""
    kind = DIMENSIONS[dim].kind
    if kind == "ip":
        try:
            a = ipaddress.IPv6Address(value)
        except ValueError:
            return value
        return str(a.ipv4_mapped) if a.ipv4_mapped else str(a)
    if kind == "int":
        return int(value)
    return value


def label_of(dims: list[str], key: list[Any]) -> str:
    parts = []
    for d, v in zip(dims, key):
        if d == "protocol" and v in PROTOCOLS:
            parts.append(PROTOCOLS[v])
        elif v == "" and DIMENSIONS[d].kind == "str":
            parts.append("(none)")
        else:
            parts.append(str(v))
    return " → ".join(parts)


def _select(dims: list[str]) -> str:
    return ", ".join(f"toString({DIMENSIONS[d].column}) AS d{i}" for i, d in enumerate(dims))


def _group(dims: list[str]) -> str:
    return ", ".join(f"d{i}" for i in range(len(dims)))


# ---------------------------------------------------------------- the queries

class History:
    """Answers the /history endpoints from the ClickHouse tables (rollups where they suffice)."""

    def __init__(self, reader: ClickHouseReader) -> None:
        self.reader = reader
        # rows reach ClickHouse in the sink's batches: the newest batch_seconds are not all there yet
        self.lag = 2 * reader.cfg.batch_seconds

    def window(self, query: dict[str, str], min_step: int = 1) -> Window:
        return window(query, min_step, lag=self.lag)

    # flows ------------------------------------------------------------

    @staticmethod
    def choose_table(columns: set[str], step: int) -> str:
        if step % 3600 == 0 and columns <= ROLLUP_1H:
            return "flows_1h"
        if step % 60 == 0 and columns <= ROLLUP_1M:
            return "flows_1m"
        return "flow_samples"

    @staticmethod
    def value_sql(table: str, value: str) -> str:
        if value == "frames":
            return "sum(toUInt64(sampling_rate))" if table == "flow_samples" else "sum(frames)"
        return "sum(bytes)"

    def _flow_query(self, query: dict[str, str], need_dims: int = 1) -> tuple:
        dims = dimensions(query.get("dimensions"), at_least=need_dims)
        where_f, fcols = parse_filter(query.get("filter"))
        n = top_n(query.get("n"))
        value = value_kind(query.get("value"))
        w = self.window(query)
        table = self.choose_table(set(dims) | fcols, w.step)
        return dims, where_f, n, value, w, table

    def _where(self, w: Window, table: str, where_f: str) -> str:
        sql = w.where()
        return f"{sql} AND ({where_f})" if where_f else sql

    async def flows(self, query: dict[str, str]) -> dict:
        dims, where_f, n, value, w, table = self._flow_query(query)
        unit, scale = VALUES[value]
        return await self.reader.run(lambda: self._flows(dims, where_f, n, value, unit, scale, w, table))

    def _flows(self, dims, where_f, n, value, unit, scale, w: Window, table) -> dict:
        t = self.reader.table(table)
        v = self.value_sql(table, value)
        where = self._where(w, table, where_f)
        group = _group(dims)
        top = self.reader.rows(f"SELECT {_select(dims)}, toString({v}) AS v FROM {t} WHERE {where} "
                               f"GROUP BY {group} ORDER BY {v} DESC, {group} LIMIT {n}")
        keys = [[r[f"d{i}"] for i in range(len(dims))] for r in top]
        bucket = f"intDiv(toUInt32(toDateTime(time)), {w.step}) * {w.step}"
        times = w.times
        index = {tm: k for k, tm in enumerate(times)}
        series: list[list[float | None]] = [[None] * len(times) for _ in keys]
        other: list[float | None] = [None] * len(times)
        # the top keys' steps and the rest's in one scan: "other" is exactly what the series leave out
        is_top = "0"
        if keys:
            lits = []
            for key in keys:
                parts = [literal(DIMENSIONS[d], show(d, x)) for d, x in zip(dims, key)]
                lits.append(parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")")
            cols = DIMENSIONS[dims[0]].column if len(dims) == 1 else \
                "(" + ", ".join(DIMENSIONS[d].column for d in dims) + ")"
            is_top = f"{cols} IN ({', '.join(lits)})"
        key_cols = ", ".join(f"if(is_top, toString({DIMENSIONS[d].column}), '') AS d{i}" for i, d in enumerate(dims))
        pos = {tuple(k): i for i, k in enumerate(keys)}
        for r in self.reader.rows(f"SELECT {bucket} AS t, {is_top} AS is_top, {key_cols}, toString({v}) AS v "
                                  f"FROM {t} WHERE {where} GROUP BY t, is_top, {group}"):
            step = index.get(int(r["t"]))
            if step is None:
                continue
            rate = int(r["v"]) * scale / w.step
            k = pos.get(tuple(r[f"d{i}"] for i in range(len(dims)))) if int(r["is_top"]) else None
            if k is not None:
                series[k][step] = rate
                other[step] = other[step] or 0.0
            else:
                other[step] = (other[step] or 0.0) + rate
        span = w.end - w.start
        shown = [[show(d, x) for d, x in zip(dims, key)] for key in keys]
        totals = []
        for key, r in zip(shown, top):
            total = int(r["v"]) * scale
            totals.append({"key": key, "label": label_of(dims, key), "total": total, "avg_rate": total / span})
        return {"from": w.start, "to": w.end, "step": w.step, "value": value, "unit": unit, "table_used": table,
                "dimensions": dims, "times": times,
                "series": [{"key": key, "label": label_of(dims, key), "values": s} for key, s in zip(shown, series)],
                "other": other, "totals": totals}

    async def sankey(self, query: dict[str, str]) -> dict:
        q = dict(query)
        q.setdefault("dimensions", "src_ip,dst_ip")
        dims, where_f, n, value, w, table = self._flow_query(q, need_dims=2)
        _, scale = VALUES[value]
        return await self.reader.run(lambda: self._sankey(dims, where_f, n, value, scale, w, table))

    def _sankey(self, dims, where_f, n, value, scale, w: Window, table) -> dict:
        t = self.reader.table(table)
        v = self.value_sql(table, value)
        group = _group(dims)
        top = self.reader.rows(f"SELECT {_select(dims)}, toString({v}) AS v FROM {t} "
                               f"WHERE {self._where(w, table, where_f)} "
                               f"GROUP BY {group} ORDER BY {v} DESC, {group} LIMIT {n}")
        nodes: list[dict] = []
        ids: dict[tuple[int, Any], int] = {}
        links: dict[tuple[int, int], float] = {}
        for r in top:
            path = []
            for i, d in enumerate(dims):
                x = show(d, r[f"d{i}"])
                if (i, x) not in ids:
                    ids[(i, x)] = len(nodes)
                    nodes.append({"name": label_of([d], [x]), "dimension": d, "value": x})
                path.append(ids[(i, x)])
            amount = int(r["v"]) * scale
            for a, b in zip(path, path[1:]):
                links[(a, b)] = links.get((a, b), 0) + amount
        return {"from": w.start, "to": w.end, "value": value, "table_used": table, "dimensions": dims,
                "nodes": nodes, "links": [{"source": a, "target": b, "value": x} for (a, b), x in links.items()]}

    # counters ---------------------------------------------------------

    async def counters(self, query: dict[str, str]) -> dict:
        agent = query.get("agent")
        if not agent:
            raise bad("agent is missing (the agent's IP address)", "agent")
        try:
            agent_sql = ip_literal(agent)
        except ValueError:
            raise bad(f"agent must be an IP address, not {agent!r}", "agent") from None
        text = query.get("ifindex")
        if text is None:
            raise bad("ifindex is missing (the interface's ifIndex)", "ifindex")
        try:
            ifindex = int(text)
            if not 0 <= ifindex <= 2**32 - 1:
                raise ValueError
        except ValueError:
            raise bad(f"ifindex must be a whole number from 0 to 4294967295, not {text!r}", "ifindex") from None
        w = self.window(query, min_step=10)  # counters come every 5-30 s: finer steps would be mostly empty
        return await self.reader.run(lambda: self._counters(agent_sql, ifindex, w))

    def _counters(self, agent_sql: str, ifindex: int, w: Window) -> dict:
        names = ", ".join(str_literal(n) for n in IF_COUNTERS)
        rows = self.reader.rows(
            f"SELECT intDiv(toUInt32(toDateTime(time)), {w.step}) * {w.step} AS t, toString(name) AS c, "
            f"argMax(value, time) AS v, toUnixTimestamp64Micro(max(time)) AS at "
            f"FROM {self.reader.table('counters')} WHERE agent = {agent_sql} AND source_id_index = {ifindex} "
            f"AND record = 'IfCounters' AND name IN ({names}) AND {w.where(back=w.step)} "
            f"GROUP BY t, c ORDER BY c, t")
        times = w.times
        index = {tm: k for k, tm in enumerate(times)}
        last: dict[str, dict[int, tuple[float, float]]] = {}
        for r in rows:
            last.setdefault(r["c"], {})[int(r["t"])] = (float(r["v"]), int(r["at"]) / 1e6)

        def rates(name: str, scale: float = 1.0) -> list[float | None]:
            out: list[float | None] = [None] * len(times)
            prev = None
            for t in sorted(last.get(name, {})):
                value, at = last[name][t]
                if prev is not None and at > prev[1] and value >= prev[0] and t in index:
                    out[index[t]] = (value - prev[0]) * scale / (at - prev[1])
                prev = (value, at)  # a counter that went down (reset, wrap): no rate for that step
            return out

        speed = [None] * len(times)
        for t, (value, _) in last.get("if_speed", {}).items():
            if t in index and value > 0:
                speed[index[t]] = value

        def utilization(bps: list[float | None]) -> list[float | None]:
            return [b * 100.0 / s if b is not None and s else None for b, s in zip(bps, speed)]

        series = {"in_bps": rates("if_in_octets", 8.0), "out_bps": rates("if_out_octets", 8.0)}
        series["in_utilization"] = utilization(series["in_bps"])
        series["out_utilization"] = utilization(series["out_bps"])
        for d in ("in", "out"):
            series[f"{d}_errors"] = rates(f"if_{d}_errors")
            series[f"{d}_discards"] = rates(f"if_{d}_discards")
        series = {k: series[k] for k in COUNTER_UNITS}
        return {"from": w.start, "to": w.end, "step": w.step, "times": times, "series": series,
                "units": dict(COUNTER_UNITS)}

    # events -----------------------------------------------------------

    async def events(self, query: dict[str, str]) -> dict:
        """Threshold events of the range, newest first, as /events/json gives them (the events table);
        ``agent``, ``dataSource``, ``thresholdID`` narrow them, ``address`` keeps those whose flow key
        holds that address (a host page)."""
        where = []
        if query.get("agent"):
            try:
                where.append(f"agent = {ip_literal(query['agent'])}")
            except ValueError:
                raise bad(f"agent must be an IP address, not {query['agent']!r}", "agent") from None
        for name, column in (("dataSource", "data_source"), ("thresholdID", "threshold_id")):
            if query.get(name):
                where.append(f"{column} = {str_literal(query[name])}")
        if query.get("address"):
            try:
                address = str(ipaddress.ip_address(query["address"]))
            except ValueError:
                raise bad(f"address must be an IP address, not {query['address']!r}", "address") from None
            where.append(f"has(splitByRegexp('[^0-9A-Za-z.:]', flow_key), {str_literal(address)})")
        n = top_n(query.get("maxEvents"), default=100, field="maxEvents", most=1000)
        w = self.window(query, min_step=1)
        return await self.reader.run(lambda: self._events(where, n, w))

    def _events(self, where: list[str], n: int, w: Window) -> dict:
        rows = self.reader.rows(
            f"SELECT toString(toUnixTimestamp64Milli(time)) AS ts, toString(event_id) AS id, threshold_id, "
            f"toString(agent) AS a, data_source, metric, toString(value) AS v, "
            f"toString(threshold) AS thr, flow_key FROM {self.reader.table('events')} "
            f"WHERE {' AND '.join([w.where(), *where])} ORDER BY time DESC, event_id DESC LIMIT {n}")
        events = [{"eventID": int(r["id"]), "thresholdID": r["threshold_id"], "agent": show("agent", r["a"]),
                   "dataSource": r["data_source"], "metric": r["metric"], "value": float(r["v"]),
                   "threshold": float(r["thr"]), "flowKey": r["flow_key"] or None, "timestamp": int(r["ts"])}
                  for r in rows]
        return {"from": w.start, "to": w.end, "events": events}

    # status -----------------------------------------------------------

    async def status(self, query: dict[str, str]) -> dict:
        w = self.window(query, min_step=10)
        return await self.reader.run(lambda: self._status(w))

    def _status(self, w: Window) -> dict:
        table = self.choose_table({"agent"}, w.step)
        count = "count()" if table == "flow_samples" else "sum(samples)"
        bucket = f"intDiv(toUInt32(toDateTime(time)), {w.step}) * {w.step}"
        flows = self.reader.rows(f"SELECT {bucket} AS t, toString(agent) AS a, toString({count}) AS c "
                                 f"FROM {self.reader.table(table)} WHERE {w.where()} GROUP BY t, a")
        counters = self.reader.rows(
            f"SELECT {bucket} AS t, toString(agent) AS a, "
            f"toString(uniqExact(sub_agent_id, source_id_type, source_id_index, time)) AS c "
            f"FROM {self.reader.table('counters')} WHERE {w.where()} GROUP BY t, a")
        times = w.times
        index = {tm: k for k, tm in enumerate(times)}
        agents: dict[str, dict[str, list]] = {}
        for rows, field in ((flows, "flow_samples_per_s"), (counters, "counter_samples_per_s")):
            for r in rows:
                a = show("agent", r["a"])
                entry = agents.setdefault(a, {"flow_samples_per_s": [None] * len(times),
                                              "counter_samples_per_s": [None] * len(times)})
                if int(r["t"]) in index:
                    entry[field][index[int(r["t"])]] = int(r["c"]) / w.step
        return {"from": w.start, "to": w.end, "step": w.step, "table_used": table, "times": times,
                "series": [{"agent": a, **agents[a]} for a in sorted(agents, key=_agent_order)]}


def _agent_order(a: str) -> tuple:
    try:
        ip = ipaddress.ip_address(a)
        return (ip.version, int(ip))
    except ValueError:
        return (9, a)
