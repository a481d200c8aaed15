-- The last Kafka offset each sink consumer group wrote, per topic partition: written right after
-- the rows, before the Kafka commit, so messages re-read after a crash in between are skipped.
CREATE TABLE IF NOT EXISTS {database}.sink_offsets
(
    consumer_group LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    offset Int64,
    time DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(time)
ORDER BY (consumer_group, topic, partition);
