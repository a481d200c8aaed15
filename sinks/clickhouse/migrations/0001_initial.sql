-- Raw tables: one row per flow sample, counter value, metric, event, active flow.
-- ORDER BY leads with the hour bucket so "last N minutes" reads few granules, then the agent
-- and interfaces so "one agent/interface over time" is a range within each hour.
CREATE TABLE IF NOT EXISTS {database}.flow_samples
(
    time DateTime64(6, 'UTC') CODEC(Delta, ZSTD),
    agent IPv6,
    exporter IPv6,
    sub_agent_id UInt32,
    source_id_type UInt8,
    source_id_index UInt32,
    sequence_number UInt32,
    sampling_rate UInt32,
    sample_pool UInt32,
    drops UInt32,
    in_if UInt32,
    out_if UInt32,
    frame_length UInt32,
    bytes UInt64,
    header_protocol UInt16,
    src_mac String,
    dst_mac String,
    vlan UInt16,
    src_vlan UInt16,
    dst_vlan UInt16,
    eth_type UInt16,
    ip_version UInt8,
    src_ip IPv6,
    dst_ip IPv6,
    protocol UInt8,
    tos UInt8,
    ttl UInt8,
    src_port UInt16,
    dst_port UInt16,
    tcp_flags UInt16,
    icmp_type UInt8,
    icmp_code UInt8,
    vni UInt32,
    next_hop IPv6,
    src_mask_len UInt8,
    dst_mask_len UInt8,
    src_country LowCardinality(String),
    dst_country LowCardinality(String),
    src_asn UInt32,
    dst_asn UInt32,
    src_as_name LowCardinality(String),
    dst_as_name LowCardinality(String),
    src_groups Array(LowCardinality(String)),
    dst_groups Array(LowCardinality(String))
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (toStartOfHour(time), agent, in_if, out_if, time)
TTL toDateTime(time) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {database}.counters
(
    time DateTime64(6, 'UTC') CODEC(Delta, ZSTD),
    agent IPv6,
    sub_agent_id UInt32,
    source_id_type UInt8,
    source_id_index UInt32,
    sequence_number UInt32,
    record LowCardinality(String),
    name LowCardinality(String),
    value Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (agent, source_id_index, record, name, time)
TTL toDateTime(time) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {database}.metrics
(
    time DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    agent IPv6,
    data_source LowCardinality(String),
    name LowCardinality(String),
    value Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (agent, data_source, name, time)
TTL toDateTime(time) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {database}.events
(
    time DateTime64(3, 'UTC'),
    event_id Int64,
    threshold_id LowCardinality(String),
    agent IPv6,
    data_source LowCardinality(String),
    metric LowCardinality(String),
    value Float64,
    threshold Float64,
    flow_key String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (time, agent, threshold_id)
TTL toDateTime(time) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {database}.active_flows
(
    time DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    flow LowCardinality(String),
    agent IPv6,
    value_kind LowCardinality(String),
    data_source LowCardinality(String),
    key String,
    value Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (flow, toStartOfHour(time), agent, data_source, time)
TTL toDateTime(time) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
