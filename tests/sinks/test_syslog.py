"""The syslog sink against a real rsyslogd: RFC 5424/3164 over UDP, TCP, TLS; reconnects; Kafka end to end."""

from __future__ import annotations

import argparse
import json
import threading

import pytest

from sflowpipe.settings import Settings, SyslogSettings
from sinks import syslog
from sflowpipe.kafka import wiring
from sflowpipe.metrics import MetricsServer
from sinks.base import SinkRunner
from tests.kafka_helpers import read_topic
from tests.scrape import scrape
from tests.waiting import until
from sinks.siem import FlowKeyNames
from sflowpipe.net import parse_hostport
from sinks.syslog import DEFAULT_PORTS, SD_ID, Formatter, SyslogSink, sd_escape
from tests.sinks.rsyslog import rsyslog  # noqa: F401  (fixture)

EVENT = {"eventID": 1, "thresholdID": 'ele"ph]ant\\x', "agent": "192.0.2.200", "dataSource": "3",
         "metric": "pair", "value": 2500000.0, "threshold": 1250000.0, "flowKey": "10.1.0.10,192.0.2.10",
         "timestamp": 1763683200123}
SD_FIELDS = ("eventID", "thresholdID", "agent", "dataSource", "metric", "value", "threshold", "flowKey")


def expected_sd(e: dict) -> dict:
    def text(v):
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    return {k: text(e[k]) for k in SD_FIELDS if e.get(k) is not None}


def test_sd_escape_and_rfc5424_layout():
    assert sd_escape('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    f = Formatter(SyslogSettings(), FlowKeyNames(), hostname="collector.example", procid="42")
    m = f.event(EVENT).decode()
    assert m.startswith('<132>1 2025-11-21T00:00:00.123Z collector.example sflowpipe 42 event '
                        '[sflowpipe@32473 eventID="1" thresholdID="ele\\"ph\\]ant\\\\x" agent="192.0.2.200" ')
    assert m.endswith('flowKey="10.1.0.10,192.0.2.10"] threshold ele"ph]ant\\x exceeded: pair '
                      '10.1.0.10,192.0.2.10 on 192.0.2.200/3 = 2500000 > 1250000')
    no_key = f.event(dict(EVENT, flowKey=None)).decode()
    assert "flowKey" not in no_key
    utf8 = f.event(dict(EVENT, thresholdID="élan")).decode("utf-8")
    assert "] \ufeffthreshold élan" in utf8  # MSG-UTF8 starts with the BOM


def test_rfc3164_layout():
    f = Formatter(SyslogSettings(format="rfc3164", facility=1, severity=2), FlowKeyNames(),
                  hostname="h", procid="9")
    m = f.event(EVENT).decode()
    assert m.startswith("<10>Nov ") and " h sflowpipe[9]: [1] threshold " in m


def test_syslog_address_defaults_to_the_transport_port():
    assert parse_hostport("10.0.0.1:1514", DEFAULT_PORTS["udp"]) == ("10.0.0.1", 1514)
    assert parse_hostport("[2001:db8::1]:6514", DEFAULT_PORTS["tls"]) == ("2001:db8::1", 6514)
    assert parse_hostport("logs.example", DEFAULT_PORTS["tls"]) == ("logs.example", 6514)
    assert parse_hostport("2001:db8::1", DEFAULT_PORTS["udp"]) == ("2001:db8::1", 514)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_rfc5424_through_rsyslog(rsyslog, transport):  # noqa: F811
    port = {"udp": rsyslog.udp, "tcp": rsyslog.tcp, "tls": rsyslog.tls}[transport]
    sink = SyslogSink(SyslogSettings(address=f"127.0.0.1:{port}", transport=transport,
                                     tls_ca_file=str(rsyslog.cert)))
    events = [dict(EVENT, eventID=i, value=EVENT["value"] + i) for i in range(1, 21)]
    events.append(dict(EVENT, eventID=99, flowKey=None, thresholdID="plain"))
    for e in events:
        assert sink.add("sflow.events", "event", None, e, b"") == 1
    assert sink.pending() == len(events)
    sink.flush()
    assert sink.pending() == 0
    sink.close()
    got = rsyslog.wait_for(len(events))
    assert len(got) == len(events)
    by_id = {r["rfc5424-sd"][SD_ID]["eventID"]: r for r in got}
    for e in events:
        r = by_id[str(e["eventID"])]
        assert r["input"] == transport
        assert r["rfc5424-sd"][SD_ID] == expected_sd(e)  # rsyslog's own parse of the structured data
        assert (r["facility"], r["severity"]) == ("16", "4")
        assert r["timestamp"] == "2025-11-21T00:00:00.123Z"
        assert (r["app"], r["msgid"], r["procid"]) == ("sflowpipe", "event", sink.formatter.procid)
        assert r["msg"].startswith(f"threshold {e['thresholdID']} exceeded")


def test_rfc3164_through_rsyslog(rsyslog):  # noqa: F811
    sink = SyslogSink(SyslogSettings(address=f"127.0.0.1:{rsyslog.udp}", format="rfc3164", severity=3))
    sink.add("t", "event", None, EVENT, b"")
    sink.flush()
    [r] = rsyslog.wait_for(1)
    assert r["tag"] == f"sflowpipe[{sink.formatter.procid}]:" and r["severity"] == "3"
    assert r["msg"].strip().startswith('[1] threshold ele"ph]ant\\x exceeded')


def test_active_flows_become_one_message_per_flow(rsyslog):  # noqa: F811
    active = {"flow": "pair", "agent": "192.0.2.200", "timestamp": 1763683200000, "value": "bytes",
              "flows": [{"dataSource": "3", "key": "10.1.0.10,192.0.2.10", "value": 1250000.0},
                        {"dataSource": "4", "key": "10.1.0.11,192.0.2.11", "value": 5.5}]}
    sink = SyslogSink(SyslogSettings(address=f"127.0.0.1:{rsyslog.tcp}", transport="tcp"))
    assert sink.add("t", "active_flows", None, active, b"") == 2
    assert sink.add("t", "metrics", None, {"x": 1}, b"") == 0  # other records: nothing to say
    sink.flush()
    got = rsyslog.wait_for(2)
    assert sorted(r["rfc5424-sd"][SD_ID]["value"] for r in got) == ["1250000", "5.5"]
    assert {r["msgid"] for r in got} == {"flow"} and {r["severity"] for r in got} == {"6"}


def test_tcp_reconnects_after_receiver_restart(rsyslog):  # noqa: F811
    sink = SyslogSink(SyslogSettings(address=f"127.0.0.1:{rsyslog.tcp}", transport="tcp"))
    sink.add("t", "event", None, dict(EVENT, eventID=1), b"")
    sink.flush()
    assert len(rsyslog.wait_for(1)) == 1
    rsyslog.stop()
    sink.add("t", "event", None, dict(EVENT, eventID=2), b"")
    with pytest.raises(OSError):
        sink.flush()  # the receiver is gone: the flush says so (the runner retries)
    assert sink.pending() == 1
    rsyslog.start()
    sink.flush()
    got = rsyslog.wait_for(2)
    assert sorted(r["rfc5424-sd"][SD_ID]["eventID"] for r in got) == ["1", "2"]


def test_tls_rejects_an_unknown_certificate(rsyslog, tmp_path):  # noqa: F811
    sink = SyslogSink(SyslogSettings(address=f"127.0.0.1:{rsyslog.tls}", transport="tls"))  # system CAs only
    sink.add("t", "event", None, EVENT, b"")
    with pytest.raises(OSError):
        sink.flush()
    assert sink.pending() == 1
    insecure = SyslogSink(SyslogSettings(address=f"127.0.0.1:{rsyslog.tls}", transport="tls", tls_verify=False))
    insecure.add("t", "event", None, EVENT, b"")
    insecure.flush()
    assert len(rsyslog.wait_for(1)) == 1


@pytest.mark.kafka
def test_events_topic_to_rsyslog_end_to_end(rsyslog, kafka_bootstrap, topic_prefix):  # noqa: F811
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from schemas.codec import AvroCodec

    settings = Settings(kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix},
                        sinks={"syslog": {"address": f"127.0.0.1:{rsyslog.tls}", "transport": "tls",
                                          "tls_ca_file": str(rsyslog.cert)}})
    topic = settings.kafka.topic("events")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    status_topic = settings.kafka.topic(settings.topics.status)
    for f in admin.create_topics([NewTopic(topic, 2, 1), NewTopic(status_topic, 1, 1)]).values():
        f.result(30)
    codec = AvroCodec("event")
    events = [dict(EVENT, eventID=i, agent=f"192.0.2.{i}") for i in range(1, 31)]
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for e in events:
        p.produce(topic, codec.encode(e), e["agent"].encode())
    assert p.flush(30) == 0

    cfg = settings.sinks.syslog
    sink = SyslogSink(cfg)
    clients, codec = wiring(settings)
    runner = SinkRunner(sink, [topic], cfg.consumer_group, batch_size=10, batch_seconds=0.2,
                        clients=clients, codec=codec, status_topic=settings.kafka.topic(settings.topics.status))
    runner.start()
    t = threading.Thread(target=runner.run, daemon=True)
    t.start()
    server = MetricsServer("127.0.0.1:0", runner.metrics).start()
    try:
        got = rsyslog.wait_for(len(events), timeout=60)
        until(lambda: runner.flushed_records == len(events), 30)
        scraped = scrape(server.url)  # the runner's counters, over HTTP
    finally:
        server.stop()
        runner.stop()
        t.join(30)
        sink.close()
    assert runner.flushed_records == len(events)  # counted once written (it never was before issue 13)
    assert scraped.value("sflowpipe_sink_records_written_total") == len(events)
    assert scraped.value("sflowpipe_sink_messages_consumed_total", topic=topic) == len(events)
    assert scraped.value("sflowpipe_sink_flushes_total") >= 1
    assert scraped.value("sflowpipe_sink_flush_seconds_count") == scraped.value("sflowpipe_sink_flushes_total")
    assert scraped.value("sflowpipe_sink_flush_retries_total") == 0
    assert sorted(int(r["rfc5424-sd"][SD_ID]["eventID"]) for r in got) == list(range(1, 31))
    for r in got:
        sd = r["rfc5424-sd"][SD_ID]
        assert sd == expected_sd(dict(EVENT, eventID=int(sd["eventID"]), agent=sd["agent"]))
        assert r["input"] == "tls"
    assert runner.failed_flushes == 0
    # the same numbers on the status topic, for the API's status page and /analyzer/json: the last
    # one sent as the runner stopped
    statuses = read_topic(kafka_bootstrap, status_topic, decode=json.loads,
                          until=lambda ms: any(m["records_written"] == len(events) for m in ms))
    final = next(m for m in statuses if m["records_written"] == len(events))
    assert final["kind"] == "sink" and final["component"] == cfg.consumer_group
    assert final["instance"] == runner.instance and final["consumed"] == len(events)
    assert final["flushes"] == scraped.value("sflowpipe_sink_flushes_total") and final["flush_retries"] == 0
    assert final["dead_letters"] == 0 and final["undecodable"] == 0


def test_cli_arguments_override_settings():
    parser = argparse.ArgumentParser()
    syslog.add_arguments(parser)
    args = parser.parse_args(["--address", "10.0.0.1:1514", "--transport", "tcp", "--format", "leef",
                              "--topics", "events,flows", "--no-tls-verify"])
    cfg = syslog.resolve(Settings(), args)
    assert (cfg.address, cfg.transport, cfg.format, cfg.topics, cfg.tls_verify) == \
        ("10.0.0.1:1514", "tcp", "leef", ["events", "flows"], False)
