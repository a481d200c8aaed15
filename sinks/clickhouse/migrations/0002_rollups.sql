-- 1-minute and 1-hour rollups of flow samples, fed by materialized views at insert time.
-- SummingMergeTree adds up bytes/frames/samples of rows with the same key when parts merge:
-- query them with sum() and GROUP BY (a part may still hold unmerged rows).
CREATE TABLE IF NOT EXISTS {database}.flows_1m
(
    time DateTime('UTC'),
    agent IPv6,
    in_if UInt32,
    out_if UInt32,
    src_ip IPv6,
    dst_ip IPv6,
    protocol UInt8,
    src_country LowCardinality(String),
    dst_country LowCardinality(String),
    src_asn UInt32,
    dst_asn UInt32,
    bytes UInt64,
    frames UInt64,
    samples UInt64
)
ENGINE = SummingMergeTree((bytes, frames, samples))
PARTITION BY toYYYYMM(time)
ORDER BY (time, agent, in_if, out_if, src_ip, dst_ip, protocol, src_country, dst_country, src_asn, dst_asn)
TTL time + INTERVAL {rollup_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.flows_1m_mv TO {database}.flows_1m AS
SELECT
    toStartOfMinute(time) AS time, agent, in_if, out_if, src_ip, dst_ip, protocol,
    src_country, dst_country, src_asn, dst_asn,
    sum(bytes) AS bytes, sum(toUInt64(sampling_rate)) AS frames, count() AS samples
FROM {database}.flow_samples
GROUP BY time, agent, in_if, out_if, src_ip, dst_ip, protocol, src_country, dst_country, src_asn, dst_asn;

-- The hourly rollup drops the addresses (agent/interface/country/AS traffic over months).
CREATE TABLE IF NOT EXISTS {database}.flows_1h
(
    time DateTime('UTC'),
    agent IPv6,
    in_if UInt32,
    out_if UInt32,
    protocol UInt8,
    src_country LowCardinality(String),
    dst_country LowCardinality(String),
    src_asn UInt32,
    dst_asn UInt32,
    bytes UInt64,
    frames UInt64,
    samples UInt64
)
ENGINE = SummingMergeTree((bytes, frames, samples))
PARTITION BY toYYYYMM(time)
ORDER BY (time, agent, in_if, out_if, protocol, src_country, dst_country, src_asn, dst_asn)
TTL time + INTERVAL {rollup_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.flows_1h_mv TO {database}.flows_1h AS
SELECT
    toStartOfHour(time) AS time, agent, in_if, out_if, protocol,
    src_country, dst_country, src_asn, dst_asn,
    sum(bytes) AS bytes, sum(toUInt64(sampling_rate)) AS frames, count() AS samples
FROM {database}.flow_samples
GROUP BY time, agent, in_if, out_if, protocol, src_country, dst_country, src_asn, dst_asn;
