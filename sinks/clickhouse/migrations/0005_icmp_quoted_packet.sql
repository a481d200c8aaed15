-- The packet quoted in an ICMP error (flow_sample_batch v2): its protocol, destination address
-- and destination port, so unreachables and scans can be queried in SQL. Rows of v1 batches and
-- of packets that are not ICMP errors hold 0 / '::' / 0. The view also pads the columns a batch
-- may lack, so a plain (not enriched) flow batch goes in too (0004 refused it: the ARRAY JOIN saw
-- arrays of different sizes). MODIFY QUERY swaps the view's query in place: no moment without a
-- view, when a sink's insert would go to the Null table unseen.
ALTER TABLE {database}.flow_samples
    ADD COLUMN IF NOT EXISTS icmp_quoted_protocol UInt8 AFTER icmp_code,
    ADD COLUMN IF NOT EXISTS icmp_quoted_dst_ip IPv6 AFTER icmp_quoted_protocol,
    ADD COLUMN IF NOT EXISTS icmp_quoted_dst_port UInt16 AFTER icmp_quoted_dst_ip;

ALTER TABLE {database}.flow_sample_batches
    ADD COLUMN IF NOT EXISTS icmp_quoted_protocol Array(Nullable(Int64)),
    ADD COLUMN IF NOT EXISTS icmp_quoted_dst_ip Array(Nullable(String)),
    ADD COLUMN IF NOT EXISTS icmp_quoted_dst_port Array(Nullable(Int64));

ALTER TABLE {database}.flow_sample_batches_mv MODIFY QUERY
SELECT
    fromUnixTimestamp64Micro(a_receive_time_us, 'UTC') AS time,
    toIPv6(agent_address) AS agent,
    toIPv6(exporter_address) AS exporter,
    a_sub_agent_id AS sub_agent_id, toUInt8(a_source_id_type) AS source_id_type,
    a_source_id_index AS source_id_index, a_sequence_number AS sequence_number,
    a_sampling_rate AS sampling_rate, a_sample_pool AS sample_pool, a_drops AS drops,
    a_input AS in_if, a_output AS out_if,
    ifNull(a_frame_length, 0) AS frame_length,
    toUInt64(ifNull(a_frame_length, 0)) * toUInt64(a_sampling_rate) AS bytes,
    ifNull(a_header_protocol, 0) AS header_protocol,
    ifNull(a_src_mac, '') AS src_mac, ifNull(a_dst_mac, '') AS dst_mac,
    if(notEmpty(a_vlans), a_vlans[1].vlan, ifNull(a_src_vlan, 0)) AS vlan,
    ifNull(a_src_vlan, 0) AS src_vlan, ifNull(a_dst_vlan, 0) AS dst_vlan,
    ifNull(a_eth_type, 0) AS eth_type, ifNull(a_ip_version, 0) AS ip_version,
    toIPv6(ifNull(a_src_ip, '::')) AS src_ip, toIPv6(ifNull(a_dst_ip, '::')) AS dst_ip,
    ifNull(a_ip_protocol, 0) AS protocol, ifNull(a_tos, 0) AS tos, ifNull(a_ttl, 0) AS ttl,
    ifNull(a_src_port, 0) AS src_port, ifNull(a_dst_port, 0) AS dst_port, ifNull(a_tcp_flags, 0) AS tcp_flags,
    ifNull(a_icmp_type, 0) AS icmp_type, ifNull(a_icmp_code, 0) AS icmp_code,
    ifNull(a_icmp_quoted_protocol, 0) AS icmp_quoted_protocol,
    toIPv6(ifNull(a_icmp_quoted_dst_ip, '::')) AS icmp_quoted_dst_ip,
    ifNull(a_icmp_quoted_dst_port, 0) AS icmp_quoted_dst_port,
    ifNull(a_vni, 0) AS vni,
    toIPv6(ifNull(a_next_hop, '::')) AS next_hop,
    ifNull(a_src_mask_len, 0) AS src_mask_len, ifNull(a_dst_mask_len, 0) AS dst_mask_len,
    ifNull(a_src_country, '') AS src_country, ifNull(a_dst_country, '') AS dst_country,
    ifNull(a_src_asn, 0) AS src_asn, ifNull(a_dst_asn, 0) AS dst_asn,
    ifNull(a_src_as_name, '') AS src_as_name, ifNull(a_dst_as_name, '') AS dst_as_name,
    a_src_groups AS src_groups, a_dst_groups AS dst_groups
FROM
(
    -- a subquery: the outer aliases are the batch's own field names
    SELECT agent_address, exporter_address,
        a_receive_time_us, a_sub_agent_id, a_sequence_number, a_source_id_type, a_source_id_index,
        a_sampling_rate, a_sample_pool, a_drops, a_input, a_output,
        a_frame_length, a_header_protocol, a_dst_mac, a_src_mac, a_vlans,
        a_eth_type, a_ip_version, a_src_ip, a_dst_ip, a_ip_protocol,
        a_tos, a_ttl, a_src_port, a_dst_port, a_tcp_flags,
        a_icmp_type, a_icmp_code, a_vni, a_src_vlan, a_dst_vlan,
        a_next_hop, a_src_mask_len, a_dst_mask_len, a_src_country, a_dst_country,
        a_src_asn, a_dst_asn, a_src_as_name, a_dst_as_name, a_src_groups,
        a_dst_groups, a_icmp_quoted_protocol, a_icmp_quoted_dst_ip, a_icmp_quoted_dst_port
    FROM {database}.flow_sample_batches
    ARRAY JOIN
        receive_time_us AS a_receive_time_us,
        sub_agent_id AS a_sub_agent_id,
        sequence_number AS a_sequence_number,
        source_id_type AS a_source_id_type,
        source_id_index AS a_source_id_index,
        sampling_rate AS a_sampling_rate,
        sample_pool AS a_sample_pool,
        drops AS a_drops,
        input AS a_input,
        output AS a_output,
        frame_length AS a_frame_length,
        header_protocol AS a_header_protocol,
        dst_mac AS a_dst_mac,
        src_mac AS a_src_mac,
        vlans AS a_vlans,
        eth_type AS a_eth_type,
        ip_version AS a_ip_version,
        src_ip AS a_src_ip,
        dst_ip AS a_dst_ip,
        ip_protocol AS a_ip_protocol,
        tos AS a_tos,
        ttl AS a_ttl,
        src_port AS a_src_port,
        dst_port AS a_dst_port,
        tcp_flags AS a_tcp_flags,
        icmp_type AS a_icmp_type,
        icmp_code AS a_icmp_code,
        vni AS a_vni,
        src_vlan AS a_src_vlan,
        dst_vlan AS a_dst_vlan,
        next_hop AS a_next_hop,
        src_mask_len AS a_src_mask_len,
        dst_mask_len AS a_dst_mask_len,
        -- columns a batch may not have (a plain flow batch: no enrichment; a v1 batch: no
        -- quoted packet) are empty arrays: padded with NULLs (or []) to the batch's length
        arrayResize(src_country, length(receive_time_us)) AS a_src_country,
        arrayResize(dst_country, length(receive_time_us)) AS a_dst_country,
        arrayResize(src_asn, length(receive_time_us)) AS a_src_asn,
        arrayResize(dst_asn, length(receive_time_us)) AS a_dst_asn,
        arrayResize(src_as_name, length(receive_time_us)) AS a_src_as_name,
        arrayResize(dst_as_name, length(receive_time_us)) AS a_dst_as_name,
        arrayResize(src_groups, length(receive_time_us)) AS a_src_groups,
        arrayResize(dst_groups, length(receive_time_us)) AS a_dst_groups,
        arrayResize(icmp_quoted_protocol, length(receive_time_us)) AS a_icmp_quoted_protocol,
        arrayResize(icmp_quoted_dst_ip, length(receive_time_us)) AS a_icmp_quoted_dst_ip,
        arrayResize(icmp_quoted_dst_port, length(receive_time_us)) AS a_icmp_quoted_dst_port
);
