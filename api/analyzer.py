"""sFlow-RT's ``/prometheus/analyzer/txt``: the pipeline's own health (``ApiState.analyzer``) in the
Prometheus text format, named the way sFlow-RT's analyzer series are (``sflow_analyzer_*``) and
following Prometheus conventions: counters end in ``_total``, units are base units in the name."""

from __future__ import annotations

from typing import Any

# analyzer field, Prometheus name, type, help, scale
SERIES: tuple[tuple[str, str, str, str, float], ...] = (
    ("sFlowAgents", "sflow_analyzer_agents", "gauge", "sFlow agents heard from in the last minute", 1),
    ("ingesters", "sflow_analyzer_ingesters", "gauge", "ingesters that reported in the last minute", 1),
    ("uptime", "sflow_analyzer_uptime_seconds", "gauge", "seconds since this API instance started", 1e-3),
    ("sFlowDatagramsReceived", "sflow_analyzer_datagrams_received_total", "counter", "sFlow datagrams received", 1),
    ("sFlowBytesReceived", "sflow_analyzer_received_bytes_total", "counter", "sFlow datagram bytes received", 1),
    ("sFlowFlowSamples", "sflow_analyzer_flow_samples_total", "counter", "flow samples decoded", 1),
    ("sFlowCounterSamples", "sflow_analyzer_counter_samples_total", "counter", "counter samples decoded", 1),
    ("sFlowDiscardSamples", "sflow_analyzer_discard_samples_total", "counter", "drop notifications decoded", 1),
    ("sFlowDatagramsDiscarded", "sflow_analyzer_datagrams_discarded_total", "counter",
     "datagrams dropped by the kernel or not delivered to Kafka", 1),
    ("sFlowParseErrors", "sflow_analyzer_parse_errors_total", "counter", "datagrams that failed to decode", 1),
    ("sFlowUnsupportedVersion", "sflow_analyzer_unsupported_version_total", "counter",
     "datagrams of an sFlow version other than 5", 1),
    ("eventsGenerated", "sflow_analyzer_events_generated_total", "counter", "threshold events read", 1),
    ("flowsGenerated", "sflow_analyzer_flows_generated_total", "counter", "logged flows read", 1),
    # sflowpipe's own, from the processor workers', sinks' and controls' status messages (no sFlow-RT series)
    ("processorWorkers", "sflow_analyzer_processor_workers", "gauge", "processor workers that reported in the "
     "last minute", 1),
    ("processorSamples", "sflow_analyzer_processor_samples_total", "counter", "samples the processor workers "
     "processed (since each started)", 1),
    ("processorLag", "sflow_analyzer_processor_lag_messages", "gauge", "messages the processor workers are behind", 1),
    ("sinkInstances", "sflow_analyzer_sink_instances", "gauge", "sinks that reported in the last minute", 1),
    ("sinkRecordsWritten", "sflow_analyzer_sink_records_written_total", "counter", "records the sinks wrote "
     "(since each started)", 1),
    ("sinkDeadLetters", "sflow_analyzer_sink_dead_letters_total", "counter", "records the sinks dead-lettered", 1),
    ("sinkLag", "sflow_analyzer_sink_lag_messages", "gauge", "messages the sinks are behind", 1),
    ("controlInstances", "sflow_analyzer_control_instances", "gauge", "control services that reported in the "
     "last minute", 1),
    ("controlActive", "sflow_analyzer_control_active", "gauge", "controls applied now", 1),
    ("controlApplied", "sflow_analyzer_control_applied_total", "counter", "controls applied (since each control "
     "service started)", 1),
    ("controlFailed", "sflow_analyzer_control_failed_total", "counter", "control applies and releases that failed "
     "(dead-lettered)", 1),
    # this API instance's own (its registry)
    ("apiRequests", "sflow_analyzer_api_requests_total", "counter", "HTTP requests this API instance answered", 1),
    ("apiLongPollsOpen", "sflow_analyzer_api_long_polls_open", "gauge", "long-polls waiting now on this API "
     "instance", 1),
)


def render(analyzer: dict[str, Any]) -> str:
    out = []
    for field, name, kind, text, scale in SERIES:
        value = analyzer.get(field, 0)
        number = repr(value * scale) if scale != 1 else str(int(value))
        out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n{name} {number}\n")
    return "".join(out)
