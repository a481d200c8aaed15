"""The one typed settings object, built once at the entry point and passed down.

Sources, later ones winning: defaults, a YAML file (``--config``), environment variables
``SFLOWPIPE_<SECTION>__<NAME>`` (e.g. ``SFLOWPIPE_DECODE__PORT=6343``), then command-line flags.
Typed records (sflowpipe/typed.py: pydantic's vocabulary, a millisecond to import) and
`load_settings`, the one reader of those sources: pydantic-settings, then pydantic itself, cost
every command that reads its settings ~0.2 s more than the 0.3 s start-up budget allows
(README "Start-up").
"""

from __future__ import annotations

import difflib
import json
import math
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from sflowpipe.typed import ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from sflowpipe.typed import Model as BaseModel


class DecodeSettings(BaseModel):
    """`sflowpipe decode`: the sflowtool drop-in."""

    port: int = Field(6343, ge=1, le=65535, description="UDP port to listen on when no -r file is given")
    listen_address: str = Field("::", description="address to bind (:: takes IPv4 and IPv6)")


class KafkaSettings(BaseModel):
    """The Kafka cluster and sflowpipe's topics on it."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="HOST:PORT[,HOST:PORT...]")
    topic_prefix: str = Field("sflow.", description="prefix of every topic name (renames them all)")
    partitions: int = Field(6, ge=1, description="partitions of topics sflowpipe creates")
    replication_factor: int = Field(1, ge=1, description="replication factor of topics sflowpipe creates")
    compression: Literal["zstd", "lz4", "snappy", "gzip", "none"] = "zstd"
    linger_ms: int = Field(20, ge=0, description="producer batching delay")
    memory_queue_mb: int = Field(256, ge=1, description="producer in-memory queue bound, then spill to disk")
    message_timeout_s: float = Field(5.0, gt=0, description="the in-flight window: a message Kafka has not "
                                     "taken within this goes back to the disk spill (what a kill can lose)")
    schema_registry_url: str | None = Field(None, description="Confluent-compatible Schema Registry; "
                                                              "unset: Avro single-object encoding")
    common: dict[str, str] = Field(default_factory=dict, description="librdkafka settings for every client (producers, "
                                   "consumers, admin; security.protocol, sasl.*, ssl.* also mapped to the Faust "
                                   "workers): TLS and SASL go here")
    producer: dict[str, str] = Field(default_factory=dict, description="extra librdkafka producer settings")
    consumer: dict[str, str] = Field(default_factory=dict, description="extra librdkafka consumer settings")

    def topic(self, name: str) -> str:
        return self.topic_prefix + name


class TopicNames(BaseModel):
    """Topic names, before the prefix (default prefix ``sflow.``)."""

    raw: str = "raw"
    flow_samples: str = "flow-samples"
    counter_samples: str = "counter-samples"
    discard_samples: str = "discard-samples"
    deadletter: str = "deadletter"
    enriched_flow_samples: str = "enriched-flow-samples"
    flows: str = "flows"
    metrics: str = "metrics"
    events: str = "events"
    flow_logs: str = "flow-logs"
    config: str = "config"
    status: str = "status"
    controls: str = "controls"


class IngestSettings(BaseModel):
    """`sflowpipe ingest`: stateless UDP ingesters."""

    listen: str = Field("[::]:6343", description="UDP HOST:PORT; [::] takes IPv4 and IPv6")
    workers: int = Field(1, ge=1, le=64, description="processes, each with its own SO_REUSEPORT socket")
    rcvbuf_bytes: int = Field(32 << 20, ge=1 << 16, description="SO_RCVBUF requested per socket")
    batch_max_samples: int = Field(500, ge=1, description="flush an agent's batch at this many samples")
    batch_max_ms: float = Field(50, gt=0, description="... or when its oldest sample is this old")
    spill_dir: str = Field("./data/spill", description="on-disk queue while Kafka is unreachable")
    spill_max_mb: int = Field(1024, ge=1, description="bound of the on-disk queue (per worker)")
    metrics_listen: str = Field("127.0.0.1:9343", description="Prometheus /metrics HTTP HOST:PORT (port 0: any; "
                                                              "0.0.0.0 exposes it)")
    status_interval_s: float = Field(2.0, gt=0, description="publish this ingester's counters to the status "
                                                            "topic every ... (the API's status page)")

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_host(cls, v: str) -> str:
        return loopback_if_no_host(v)


class FlowDefinition(BaseModel):
    """A flow, as sFlow-RT defines it (setFlow): keys, value, filter, smoothing and top-N size."""

    model_config = {"extra": "forbid", "populate_by_name": True, "allow_inf_nan": False}

    keys: str = Field("", description="comma-separated flow keys and key functions, e.g. ipsource,ipdestination; "
                                      "empty: one flow, the total (key \"\")")
    value: str = Field("bytes", description="bytes, frames, bps, fps or requests")
    filter: str | None = Field(None, description="e.g. ipprotocol=6,17&country:ipsource!=US")
    t: float = Field(2.0, description="smoothing time constant, seconds (clamped 0.2-600)")
    n: int = Field(5, description="largest flows kept per data source (clamped 5-20)")
    fs: str = Field(",", description="separator between key values")
    log: bool = Field(False, description="emit a flow-log record per flow (topic flow-logs)")
    flow_start: bool = Field(False, alias="flowStart", description="log: a record when a flow starts, not when it ends")
    active_timeout: float = Field(60.0, alias="activeTimeout", gt=0,
                                  description="log: seconds before a still active flow is flushed (a new interval)")
    agg_mode: str | None = Field(None, alias="aggMode",
                                 description="edge (count a packet once, where it enters the network) or agent "
                                             "(pool the agent's data sources)")
    dropped: bool = Field(False, description="computed over discarded-packet notifications, not packet samples")

    @field_validator("keys", mode="before")
    @classmethod
    def _no_keys(cls, v):  # "keys": null is a flow without keys, as an absent "keys" is
        return "" if v is None else v


class ThresholdDefinition(BaseModel):
    """A threshold, as sFlow-RT defines it (setThreshold)."""

    model_config = {"extra": "forbid", "populate_by_name": True, "allow_inf_nan": False}

    metric: str = Field(description="a flow name or a counter metric name")
    value: float
    filter: dict[str, list[str] | str] | None = Field(None, description="agent / dataSource attributes to match")
    by_flow: bool = Field(False, alias="byFlow", description="an event per flow key over the threshold")
    timeout: float = Field(60.0, description="seconds below the threshold before it re-arms")


class BlocklistDefinition(BaseModel):
    """A blocklist (processors/blocklist.py): addresses/CIDRs, one per line, from a file or an http(s) URL."""

    model_config = {"extra": "forbid"}

    source: str = Field(description="file path or http(s):// URL of the list")
    refresh_s: float = Field(3600.0, gt=0, description="re-read the list every ...")
    rate_limit_s: float = Field(60.0, ge=0, description="at most one event per (list, source, destination) per ...")


class ScanSettings(BaseModel):
    """Scan detection from ICMP destination-unreachable messages (processors/scans.py): a host sent
    unreachables about ``threshold`` or more distinct targets within ``interval_s`` raises a `scan` event."""

    model_config = {"extra": "forbid"}

    enabled: bool = False
    threshold: int = Field(20, ge=1, description="distinct unreachable targets per scanner per interval")
    interval_s: float = Field(60.0, gt=0, description="counting interval, seconds")


class ForwardingDefinition(BaseModel):
    """A raw sFlow forwarding target (the REST API's /forwarding/{name}/json): `sflowpipe forward
    --from-config` re-sends every datagram to it."""

    model_config = {"extra": "forbid"}

    address: str = Field(description="collector host or address")
    port: int = Field(6343, ge=1, le=65535)


class EnrichSettings(BaseModel):
    """Country, ASN and address-group enrichment."""

    country_mmdb: str | None = Field(None, description="MaxMind-format country database (GeoLite2/DB-IP lite)")
    asn_mmdb: str | None = Field(None, description="MaxMind-format ASN database")
    groups: dict[str, dict[str, list[str]]] = Field(default_factory=dict,
                                                    description="group set -> group name -> CIDR prefixes")
    office365_enabled: bool = True
    office365_url: str = Field(
        "https://endpoints.office.com/endpoints/worldwide?clientrequestid=b10c5ed1-bad1-445f-b386-b919946339a7",
        description="Microsoft 365 endpoints web service")
    office365_refresh_s: float = Field(86400.0, gt=0)
    cache_dir: str = Field("./data/cache", description="last good copies of downloaded data")


class ProcessorSettings(BaseModel):
    """`sflowpipe process`: the Faust workers."""

    app_id: str = Field("sflowpipe-processors", description="Faust app id (consumer group, table names)")
    definitions_file: str | None = Field(None, description="YAML with flows:, thresholds: and groups:")
    flows: dict[str, FlowDefinition] = Field(default_factory=dict)
    thresholds: dict[str, ThresholdDefinition] = Field(default_factory=dict)
    blocklists: dict[str, BlocklistDefinition] = Field(default_factory=dict,
                                                       description="name -> blocklist raising `blocklist` events")
    scans: ScanSettings = Field(default_factory=ScanSettings, description="`scan` events from ICMP unreachables")
    report_interval_s: float = Field(1.0, gt=0, description="top flows, thresholds and metrics every ...")
    checkpoint_interval_s: float = Field(5.0, gt=0, description="live state to Faust tables every ...")
    # a killed worker's partitions wait ~2x this on Tansu before anyone reports them again; on Apache
    # Kafka about 1x (tests/processors/test_restart.py there: its restarted worker was assigned 0.1 s
    # after joining, 7.3 s after the SIGKILL, with 6 s)
    session_timeout_s: float = Field(6.0, gt=0, description="Kafka consumer session timeout")
    consumer_max_fetch_size: int = Field(8 << 20, description="bytes per partition fetch (batches are large)")
    # Tansu answers a fetch only when this is over, even when data came meanwhile (Faust's own 1,500 ms
    # delayed every batch by up to that much: processors/fetch_wait.py); Apache Kafka answers at once
    fetch_max_wait_ms: int = Field(100, ge=1, le=1500,
                                   description="longest a worker's fetch waits for data (Tansu: the delay it adds)")
    data_dir: str = Field("./data/processors", description="Faust's local state")
    web_port: int = Field(6066, description="Faust's web server port")
    metrics_listen: str = Field("127.0.0.1:9345", description="Prometheus /metrics HTTP HOST:PORT (port 0: any; "
                                                              "plus the worker index, as web_port)")
    workers: int = Field(1, ge=1, le=64)
    fill_stream_gaps: bool = Field(True, description="read flow-sample offsets the Faust stream skipped across a "
                                                     "rebalance (see processors/app.py GapFiller)")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="exactly_once: each partition's outputs, agent checkpoints and offsets commit "
        "in one Kafka transaction every checkpoint_interval_s (a crash repeats and loses nothing; consumers reading "
        "read_committed see outputs at commits). Needs a broker with transactions (Apache Kafka; not Tansu)")


class ClickHouseSettings(BaseModel):
    """The ClickHouse sink (sinks/clickhouse)."""

    dsn: str = Field("chdb://./data/clickhouse", description="chdb:///path (embedded) or http://host:8123")
    database: str = "sflow"
    batch_rows: int = Field(50_000, ge=1, description="insert when this many rows are buffered ...")
    batch_seconds: float = Field(5.0, gt=0, description="... or this old")
    ttl_days: int = Field(30, ge=1, description="raw samples, events and active flows")
    rollup_ttl_days: int = Field(400, ge=1, description="1-minute and 1-hour rollups")
    dedup_window: int = Field(200_000, ge=0, description="recent flow batches/events remembered to drop the "
                                                         "processors' at-least-once redeliveries")
    consumer_group: str = "sflowpipe-clickhouse"
    metrics_listen: str = Field("127.0.0.1:9346", description="this sink's Prometheus /metrics HTTP HOST:PORT (port 0: any)")


class SyslogSettings(BaseModel):
    """The syslog/SIEM sink: events (and selected flows) to a syslog receiver or a file."""

    address: str = Field("127.0.0.1:514", description="HOST:PORT of the receiver")
    transport: Literal["udp", "tcp", "tls"] = "udp"
    format: Literal["rfc5424", "rfc3164", "cef", "leef"] = "rfc5424"
    facility: int = Field(16, ge=0, le=23, description="16 = local0")
    severity: int = Field(4, ge=0, le=7, description="4 = warning")
    app_name: str = "sflowpipe"
    file: str | None = Field(None, description="write lines to this file instead of the network")
    tls_ca_file: str | None = None
    tls_verify: bool = True
    topics: list[str] = Field(default_factory=lambda: ["events"], description="topic names (before the prefix)")
    consumer_group: str = "sflowpipe-syslog"
    metrics_listen: str = Field("127.0.0.1:9347", description="this sink's Prometheus /metrics HTTP HOST:PORT (port 0: any)")


class HttpSinkSettings(BaseModel):
    """One HTTP event endpoint."""

    type: Literal["loggly", "splunk", "elastic", "webhook"]
    url: str
    token: SecretStr | None = Field(None, description="Loggly customer token / Splunk HEC token / API key")
    tag: str | None = Field(None, description="Loggly tag")
    index: str | None = Field(None, description="Elastic index / Splunk index")
    batch_size: int = Field(500, ge=1)
    batch_seconds: float = Field(2.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)
    max_retries: int = Field(5, ge=0, description="retry budget per batch, then the dead-letter topic")
    backoff_s: float = Field(0.5, gt=0, description="first retry delay; doubles, with jitter")
    topics: list[str] = Field(default_factory=lambda: ["events"])
    consumer_group: str | None = Field(None, description="default sflowpipe-http-<name>")
    metrics_listen: str = Field("127.0.0.1:0", description="this endpoint's Prometheus /metrics HTTP HOST:PORT "
                                                           "(port 0: any, logged at start; one process per endpoint)")

    def group(self, name: str) -> str:
        """The consumer group of endpoint ``name``: the one set, else sflowpipe-http-<name>."""
        return self.consumer_group or f"sflowpipe-http-{name}"


def loopback_if_no_host(listen: str) -> str:
    """``:PORT`` binds the loopback address: a listener is exposed only when an address says so."""
    return "127.0.0.1" + listen if listen.startswith(":") else listen


class ListenerAuth(BaseModel):
    """Who may use an HTTP listener (the API, the Prometheus exporter) and whether it may define
    anything. Credentials are complete or refused at start: a half-set pair would open it."""

    listen: str = Field(description="HTTP HOST:PORT; :PORT is the loopback address")
    token: SecretStr | None = Field(None, description="require `Authorization: Bearer TOKEN`")
    basic_user: str | None = Field(None, description="require HTTP basic authentication with this user ...")
    basic_password: SecretStr | None = Field(None, description="... and this password")
    read_only: bool = Field(False, description="define nothing: refuse PUT/POST/DELETE, and no scrape defines a flow")
    scrape_defines_flows: bool = Field(True, description="a scrape of export.js naming keys no flow has defines "
                                                         "that flow, as sFlow-RT's prometheus app does (never "
                                                         "when read_only)")

    @field_validator("listen")
    @classmethod
    def _listen_host(cls, v: str) -> str:
        return loopback_if_no_host(v)

    @model_validator(mode="after")
    def _complete_credentials(self):
        if self.token is not None and not self.token.get_secret_value().strip():
            raise ValueError("token is empty: set one, or leave it out (no token)")
        if self.basic_user is not None and not self.basic_user:
            raise ValueError("basic_user is empty: set one with basic_password, or leave both out")
        if self.basic_user and not (self.basic_password and self.basic_password.get_secret_value()):
            raise ValueError("basic_user is set without basic_password: set both, or neither")
        if self.basic_password is not None and not self.basic_user:
            raise ValueError("basic_password is set without basic_user: set both, or neither")
        return self

    @property
    def defines_flows(self) -> bool:
        """Whether a scrape may define the flow it names."""
        return self.scrape_defines_flows and not self.read_only


class PrometheusSettings(ListenerAuth):
    """The Prometheus exporter of counter and flow metrics."""

    listen: str = Field("127.0.0.1:9344", description="HOST:PORT of /metrics and /flows (0.0.0.0 exposes it)")
    consumer_group: str = "sflowpipe-prometheus"
    metrics_listen: str = Field("127.0.0.1:9348", description="the exporter's own Prometheus /metrics (consumer, "
                                                              "flushes, lag) HTTP HOST:PORT (port 0: any)")


class ForwardSettings(BaseModel):
    """Raw sFlow forwarding to other collectors."""

    targets: list[str] = Field(default_factory=list, description="HOST:PORT of each collector")
    spoof_source: bool = Field(False, description="send with the original agent address (needs CAP_NET_RAW)")
    consumer_group_prefix: str = "sflowpipe-forward"
    metrics_listen: str = Field("127.0.0.1:9349", description="this forwarder's Prometheus /metrics HTTP HOST:PORT (port 0: any)")


class ApiSettings(ListenerAuth):
    """`sflowpipe api`: the sFlow-RT compatible REST API and the web UI."""

    listen: str = Field("127.0.0.1:8008", description="HTTP HOST:PORT (8008 is sFlow-RT's port; 0.0.0.0 exposes "
                                                      "it: set token or basic_user)")
    history_s: float = Field(900.0, gt=0, description="on start, read this much of the events/status history")
    max_events: int = Field(10_000, ge=1, description="events kept in memory for /events/json")
    stale_s: float = Field(10.0, gt=0, description="top flows and metrics older than this are not shown")
    sinks: list[str] = Field(default_factory=lambda: ["sflowpipe-clickhouse", "sflowpipe-prometheus"],
                             description="consumer groups whose lag the status page shows")
    metrics_listen: str = Field("127.0.0.1:9351", description="the API's own Prometheus /metrics (requests, "
                                                              "long-polls) HTTP HOST:PORT (port 0: any)")


class HttpRequestTemplate(BaseModel):
    """One templated HTTP request of a control action. ``url`` and ``body`` are
    ``string.Template`` text (``$key``, ``${k0}``...: JSON bodies keep their braces); the values
    put in ``url`` are URL-quoted. No body: the control's fields as JSON."""

    model_config = {"extra": "forbid"}

    method: str = "POST"
    url: str
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class ControlAction(BaseModel):
    """How a control is applied and released. ``http``: ``apply``/``release`` requests, retried
    with backoff; ``dryrun``: logged only; ``bgp``: sinks/control/bgp.py (its options are kept
    as extra fields of this model)."""

    model_config = {"extra": "allow"}

    type: Literal["http", "bgp", "dryrun"] = "dryrun"
    apply: HttpRequestTemplate | None = None
    release: HttpRequestTemplate | None = None
    timeout_s: float = Field(5.0, gt=0, description="per HTTP request")
    max_retries: int = Field(4, ge=0, description="retries of a failed apply/release, then the dead-letter topic")
    backoff_s: float = Field(0.5, gt=0, description="first retry delay; doubles, with jitter")
    max_backoff_s: float = Field(10.0, gt=0)


class ControlPolicy(BaseModel):
    """`sflowpipe control`: block what a threshold reports, release it once the flow is gone."""

    model_config = {"extra": "forbid"}

    threshold: str = Field(description="threshold whose events trigger the control (e.g. udp_reflection)")
    action: ControlAction = ControlAction()
    min_hold_s: float = Field(60.0, ge=0, description="a control stays at least this long")
    release_below_s: float = Field(10.0, ge=0, description="... and until the flow was below the threshold this long")
    max_controls: int = Field(100, ge=0, description="simultaneous controls of this policy; more are refused")
    allow: list[str] = Field(default_factory=list, description="CIDR prefixes never blocked")
    address_key: int = Field(0, ge=0, description="which part of the flow key (0-based) is the address to block")
    max_event_age_s: float = Field(60.0, gt=0, description="older threshold events are ignored (a backlog)")
    apply_retry_s: float = Field(10.0, gt=0, description="a failed apply is tried again after this, while the "
                                                        "flow stays over the threshold")


class SinkSettings(BaseModel):
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    syslog: SyslogSettings = SyslogSettings()
    http: dict[str, HttpSinkSettings] = Field(default_factory=dict, description="name -> endpoint")
    prometheus: PrometheusSettings = PrometheusSettings()
    forward: ForwardSettings = ForwardSettings()
    controls: dict[str, ControlPolicy] = Field(default_factory=dict, description="name -> control policy")
    control_metrics_listen: str = Field("127.0.0.1:9350", description="`sflowpipe control`'s Prometheus /metrics "
                                                                      "HTTP HOST:PORT (port 0: any)")


class LimitSettings(BaseModel):
    """Bounds on what definitions may cost: how many, and CPU time per batch (README "Security and failure")."""

    max_flows: int = Field(1000, ge=0, description="flow definitions; a PUT beyond this answers 409")
    max_thresholds: int = Field(1000, ge=0, description="threshold definitions")
    max_groups: int = Field(1000, ge=0, description="group sets")
    definition_budget_s: float = Field(1.0, gt=0, allow_inf_nan=False,
                                       description="CPU seconds one flow definition may spend on one sample batch; "
                                                   "beyond, the worker disables it with a `budget` event")

    def cap(self, kind: str) -> int | None:
        """The most definitions of ``kind`` there may be (None: no cap)."""
        return {"flow": self.max_flows, "threshold": self.max_thresholds, "group": self.max_groups}.get(kind)


def _refuse_non_finite(value: Any, where: str) -> None:
    """NaN and infinities are no setting's value: name the first one found."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'settings'}: {value} is not a finite number")
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _refuse_non_finite(getattr(value, name), f"{where}.{name}".lstrip("."))
        for name, v in (value.model_extra or {}).items():
            _refuse_non_finite(v, f"{where}.{name}".lstrip("."))
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_non_finite(v, f"{where}.{k}".lstrip("."))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _refuse_non_finite(v, f"{where}[{i}]")


class Settings(BaseModel):
    """Everything sflowpipe can be configured with (`load_settings` reads its sources)."""

    model_config = ConfigDict(extra="forbid")

    log_level: str = Field("INFO", description="logging level")
    decode: DecodeSettings = DecodeSettings()
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicNames = TopicNames()
    ingest: IngestSettings = IngestSettings()
    enrich: EnrichSettings = EnrichSettings()
    processors: ProcessorSettings = ProcessorSettings()
    sinks: SinkSettings = SinkSettings()
    api: ApiSettings = ApiSettings()
    limits: LimitSettings = LimitSettings()

    @model_validator(mode="after")
    def _finite(self):
        _refuse_non_finite(self, "")
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data: Any) -> Any:
        # a section ignoring unknown keys, a typo (`api: {tokne: ...}`) would silently leave the
        # API open, so every key at every depth must name a setting (with the closest valid one)
        faults = unknown_keys(cls, data)
        if faults:
            raise ValueError("; ".join(faults))
        return data


# Variables with the prefix that are not settings (the browser test's screenshot directory).
NOT_SETTINGS = frozenset({"SFLOWPIPE_SCREENSHOTS"})
ENV_PREFIX = "SFLOWPIPE_"


class SettingsError(ValueError):
    """Settings that cannot be used, in one line naming the key."""


def load_settings(config_file: str | None = None, **overrides: Any) -> Settings:
    """Build the settings: YAML file (if any) under environment variables under explicit overrides.
    Unknown keys and ``SFLOWPIPE_*`` variables, bad values and incomplete credentials raise
    SettingsError."""
    faults = unknown_variables(os.environ)
    if faults:
        raise SettingsError("; ".join(faults))
    data: dict[str, Any] = {}
    if config_file:
        import yaml  # only with a file: a command without one does not pay its import

        try:
            loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise SettingsError(f"{config_file}: {' '.join(str(e).split())}") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{config_file}: expected a mapping of settings")
        data.update(loaded)
    data = merged(data, environment_values(os.environ))  # the environment over the file, key by key
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        raise SettingsError(_one_line(e)) from None
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, _, name = dotted.partition(".")
        sections.setdefault(section, {})[name] = value
    update = {}
    for section, values in sections.items():
        current = getattr(settings, section)
        try:
            # only what was set and the overrides count as set: `up` keeps defaults it may replace
            update[section] = type(current).model_validate({**current.model_dump(exclude_unset=True), **values})
        except ValidationError as e:
            raise SettingsError(_one_line(e, section)) from None
    if not update:
        return settings
    settings = settings.model_copy(update=update)
    try:
        _refuse_non_finite(settings, "")  # command-line overrides do not pass the model validator
    except ValueError as e:
        raise SettingsError(str(e)) from None
    return settings


def merged(base: dict, over: dict) -> dict:
    """``base`` with ``over`` on top, nested mappings merged key by key (lists are replaced)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the ``SFLOWPIPE_*`` variables give, as nested data (names case-insensitive):
    ``SFLOWPIPE_API__TOKEN=x`` is ``{"api": {"token": "x"}}``; a variable naming a section, a
    mapping or a list holds JSON (``SFLOWPIPE_SINKS='{"http": ...}'``, as `up` passes secrets to
    its stages) and the variables below it win over that JSON. Values stay strings: the models
    convert them. Run `unknown_variables` first: this one takes every name for a setting."""
    found = []
    for var, value in environ.items():
        if var.upper().startswith(ENV_PREFIX) and var.upper() not in NOT_SETTINGS:
            found.append((tuple(var[len(ENV_PREFIX):].lower().split("__")), var, value))
    data: dict[str, Any] = {}
    for path, var, value in sorted(found, key=lambda f: len(f[0])):  # a section before what is in it
        structured, text_too = _structured(_annotation_at(path))
        if structured:
            try:
                value = json.loads(value)
            except ValueError as e:
                if not text_too:
                    raise SettingsError(f"{var}: expected JSON ({e})") from None
        node = data
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        last = path[-1]
        node[last] = merged(node[last], value) if isinstance(value, dict) and isinstance(node.get(last), dict) \
            else value
    return data


def _walk(path: tuple[str, ...]) -> tuple[Any, int, type[BaseModel] | None]:
    """Follow ``path`` down the settings types: (the annotation reached, how many parts matched,
    the model where the walk stopped); every part matched when the count is ``len(path)``."""
    ann: Any = Settings
    for i, part in enumerate(path):
        ann = _unwrap(ann, {})
        model = _model_of(ann)
        if model is not None and part in _keys(model):
            ann = model.model_fields[_keys(model)[part]].annotation
        elif get_origin(ann) is dict and part:
            ann = get_args(ann)[1]
        else:
            return ann, i, model
    return ann, len(path), None


def _annotation_at(path: tuple[str, ...]) -> Any:
    """The type of the setting at ``path``, None if there is none (the walk of `unknown_variables`)."""
    ann, matched, _ = _walk(path)
    return ann if matched == len(path) else None


def _structured(ann: Any) -> tuple[bool, bool]:
    """(a variable for this type holds JSON, plain text is also one of its values)."""
    while get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    members = [a for a in get_args(ann) if a is not type(None)] if get_origin(ann) in (Union, types.UnionType) \
        else [ann]
    structured = [_model_of(a) is not None or get_origin(a) in (dict, list) or a in (dict, list) for a in members]
    return any(structured), not all(structured)


def _one_line(e: ValidationError, prefix: str = "") -> str:
    """The validation errors as ``where: what`` pairs on one line, without the input (it may be a secret)."""
    parts = []
    for err in e.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


# ---------------------------------------------------------------- unknown keys


def _model_of(ann: Any) -> type[BaseModel] | None:
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _unwrap(ann: Any, value: Any) -> Any:
    """The member of an Optional/Union/Annotated type that a value of this shape goes to."""
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann = get_args(ann)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(ann) if a is not type(None)]
            fits = [a for a in members if (_model_of(a) or get_origin(a) is dict) and isinstance(value, dict)
                    or get_origin(a) is list and isinstance(value, list)]
            ann = (fits or members or [Any])[0]
        else:
            return ann


def _keys(model: type[BaseModel]) -> dict[str, str]:
    """Every key a model accepts (names and aliases) -> the field's name."""
    out = {}
    for name, f in model.model_fields.items():
        out[name] = name
        if f.alias:
            out[f.alias] = name
    return out


def _section_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every setting's path through nested sections (not into name -> definition dicts)."""
    out = []
    for name, f in model.model_fields.items():
        sub = _model_of(_unwrap(f.annotation, {}))
        out.append(prefix + (name,))
        if sub is not None:
            out += _section_paths(sub, prefix + (name,))
    return out


def _suggest(path: tuple[str, ...], key: str, model: type[BaseModel]) -> tuple[str, ...] | None:
    """The closest valid key beside ``key``, else the closest setting of that name anywhere."""
    near = difflib.get_close_matches(key, list(_keys(model)), n=1, cutoff=0.6)
    if near:
        return path + (near[0],)
    paths = sorted(_section_paths(Settings), key=len)  # the shortest path of that name: api.token
    near = difflib.get_close_matches(key, [p[-1] for p in paths], n=1, cutoff=0.75)
    return next((p for p in paths if near and p[-1] == near[0]), None)


def unknown_keys(ann: Any, value: Any, path: tuple[str, ...] = ()) -> list[str]:
    """``where: unknown setting (did you mean ...?)`` for every key of ``value`` that the type
    ``ann`` (a settings model, a dict or list of them) has no place for."""
    ann = _unwrap(ann, value)
    model, origin = _model_of(ann), get_origin(ann)
    out: list[str] = []
    if model is not None and isinstance(value, dict):
        keys = _keys(model)
        for key, sub in value.items():
            if str(key) in keys:
                out += unknown_keys(model.model_fields[keys[str(key)]].annotation, sub, path + (str(key),))
            elif model.model_config.get("extra") != "allow":  # extras allowed: checked by their owner
                near = _suggest(path, str(key), model)
                hint = f" (did you mean {'.'.join(near)}?)" if near else ""
                out.append(f"{'.'.join(path + (str(key),))}: unknown setting{hint}")
    elif origin is dict and isinstance(value, dict):
        for key, sub in value.items():
            out += unknown_keys(get_args(ann)[1], sub, path + (str(key),))
    elif origin is list and isinstance(value, list):
        for i, sub in enumerate(value):
            out += unknown_keys(get_args(ann)[0], sub, path + (str(i),))
    return out


def _variable(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "__".join(path).upper()


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Faults of the ``SFLOWPIPE_*`` variables: names that are no setting (an ignored variable is
    a setting silently not set) and unknown keys inside JSON values of sections."""
    out = []
    for var, value in sorted(environ.items()):
        if not var.upper().startswith(ENV_PREFIX) or var.upper() in NOT_SETTINGS:
            continue
        parts = tuple(var[len(ENV_PREFIX):].lower().split("__"))
        ann, i, model = _walk(parts)
        if i < len(parts):
            near = _suggest(parts[:i], parts[i], model) if model is not None else None
            if near is None:  # a misplaced separator: SFLOWPIPE_API_TOKEN
                names = {_variable(p): p for p in _section_paths(Settings)}
                close = difflib.get_close_matches(var.upper(), list(names), n=1, cutoff=0.8)
                near = names[close[0]] if close else None
            where = ".".join(parts[:i + 1]) or var
            hint = f" (did you mean {_variable(near)}?)" if near else ""
            out.append(f"{var}: {where} is not a setting{hint}")
        else:
            if _model_of(_unwrap(ann, {})) is not None or get_origin(_unwrap(ann, {})) in (dict, list):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    continue  # not JSON: environment_values names the fault
                out += [f"{var}: {fault}" for fault in unknown_keys(ann, parsed, parts)]
    return out
