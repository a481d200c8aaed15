"""Bounded evaluation in a real Faust worker on the real broker (issue 12, "Why" 1 and 6): the filter
that froze the workers, defined over the REST API, runs in linear time; a flow that runs past its CPU
budget is disabled with a `budget` event and a status-topic count while the other flows keep being
reported; a DELETE takes effect; a NaN threshold and a flow beyond the cap written straight to the
config topic are refused by the worker's config watcher."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import Producer

from api.server import Api
from api.state import ApiState
from ingest.pcap import UdpDatagram
from ingest.replay import publish_kafka
from sflowpipe.config_plane import publish
from sflowpipe.settings import load_settings
from tests.kafka_helpers import read_topic
from tests.payload_frames import datagram, http, record_sample, socket4
from tests.processors.processor_harness import ProcessorProcess
from tests.processors.test_app_integration import ingest_settings
from tests.waiting import until

pytestmark = pytest.mark.kafka

AGENT = "192.0.2.211"
ISSUE = ".*" * 40 + "x"  # issue 12: `ipsource~` followed by 40 x `.*` and `x`


def _definition_lines(log: str) -> str:
    """The worker's log lines about definitions and evaluation (what a failure needs), whole."""
    words = ("flow ", "budget", "disabled", "rejected", "rebalance", "skipped", "restored", "Ready", "event ")
    return "\n".join(line for line in log.splitlines() if any(w in line for w in words))


def url_datagrams(uris: list[str], now: float, seq0: int = 0, rate: int = 10) -> list[UdpDatagram]:
    samples = [record_sample((http(uri=u), socket4()), seq0 + i + 1, rate) for i, u in enumerate(uris)]
    out = []
    for n, start in enumerate(range(0, len(samples), 8)):
        ts = now + n * 0.001
        out.append(UdpDatagram(int(ts), int((ts % 1) * 1e6), AGENT, 6343, "", 0,
                               datagram(samples[start:start + 8], AGENT, seq0 + n + 1)))
    return out


def report_rounds_without(msgs: list, present: str, absent: str, t: float) -> bool:
    """Some report round after ``t`` (the messages of one timer tick share a timestamp) has flow
    ``present`` and not flow ``absent``."""
    rounds = {m["timestamp"] for m in msgs if m["flow"] == present and m["timestamp"] / 1000 > t}
    return bool(rounds - {m["timestamp"] for m in msgs if m["flow"] == absent})


def reported_after(msgs: list, flow: str, t: float) -> set[str]:
    return {e["key"] for m in msgs if m["flow"] == flow and m["timestamp"] / 1000 > t for e in m["flows"]}


@pytest.mark.asyncio
async def test_hostile_flows_cannot_stop_the_worker(kafka_bootstrap, topic_prefix, tmp_path):
    env = {"SFLOWPIPE_LIMITS__DEFINITION_BUDGET_S": "0.05", "SFLOWPIPE_LIMITS__MAX_FLOWS": "4"}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, {}, app_id=f"{topic_prefix}app",
                              extra_env=env)
    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.partitions": 3})
    api = Api(settings.api, settings.limits, ApiState(settings.api), lambda kind, name, body: publish(settings, kind, name, body))
    client = TestClient(TestServer(api.app()))
    await client.start_server()
    worker.start()
    try:
        defs = {"urls": {"keys": "httpurl", "value": "frames", "t": 600, "n": 20},
                "issue": {"keys": "ipsource", "value": "frames", "filter": "ipsource~" + ISSUE},
                "endsx": {"keys": "httpurl", "value": "frames", "t": 600, "n": 20, "filter": "httpurl~" + ISSUE},
                "slow": {"keys": "httpurl", "value": "frames", "t": 600, "filter": "httpurl~(.*a){20}"}}
        for name, body in defs.items():
            r = await client.put(f"/flow/{name}/json", json=body)
            assert r.status == 204, await r.text()
        for text in ('{"metric": "urls", "value": NaN}', '{"metric": "urls", "value": 1e999}'):
            assert (await client.put("/threshold/nan/json", data=text)).status == 400
        # the worker's config watcher has the four (the cap) before a fifth comes: it counts a definition
        # before handing it to the engine, which logs each one it takes
        until(lambda: all(f"flow {name}: keys=" in worker.log.read_text(errors="replace") for name in defs),
              timeout=60)
        # past the API: a NaN threshold and a fifth flow straight onto the config topic
        p = Producer({"bootstrap.servers": kafka_bootstrap})
        p.produce(topic_prefix + "config", b'{"metric": "urls", "value": NaN}', b"threshold:nan")
        p.produce(topic_prefix + "config", b'{"keys": "ipsource"}', b"flow:fifth")
        assert p.flush(30) == 0
        # the worker's config watcher has read them (and refused both, each named in the log)
        until(lambda: all(f"rejected {key!r}" in worker.log.read_text(errors="replace")
                          for key in (b"threshold:nan", b"flow:fifth")), timeout=60)

        t0 = time.time()
        long_a = ["a" * (3000 + i) for i in range(300)]  # (.*a){20} matches each: milliseconds apiece
        ends_x = [f"/{i}/x" for i in range(5)]
        publish_kafka(url_datagrams(long_a + ends_x, t0), ingest_settings(kafka_bootstrap, topic_prefix, tmp_path))
        events = read_topic(kafka_bootstrap, topic_prefix + "events",
                            lambda ms: any(m["thresholdID"] == "budget" for m in ms), timeout=60)
        # by eventID, as every consumer reads them: the worker's producer may deliver a message twice
        # (a send retried after a slow acknowledgement on a loaded machine; at-least-once)
        budget = list({m["eventID"]: m for m in events if m["thresholdID"] == "budget"}.values())
        assert len(budget) == 1, (budget, _definition_lines(worker.log.read_text(errors="replace")))
        (ev,) = budget
        assert ev["metric"] == "slow" and ev["agent"] == AGENT and ev["value"] > 0.05
        assert not [m for m in events if m["thresholdID"] == "nan"]

        # the worker goes on: a second wave is counted by the other flows
        t1 = time.time()
        wave = [f"/wave2/{i}x" for i in range(3)]
        publish_kafka(url_datagrams(wave, t1, seq0=1000, rate=1000),  # heavy: in the top 20
                      ingest_settings(kafka_bootstrap, topic_prefix, tmp_path))

        def caught_up(ms):
            return set(wave) <= reported_after(ms, "urls", t1) and set(wave) <= reported_after(ms, "endsx", t1)

        flows = read_topic(kafka_bootstrap, topic_prefix + "flows", caught_up, timeout=60)
        assert caught_up(flows), worker.log.read_text()[-3000:]
        assert reported_after(flows, "endsx", t1) == set(ends_x) | set(wave)  # full match: only URLs ending in x
        assert not reported_after(flows, "slow", t0)  # disabled on its first batch
        assert not reported_after(flows, "issue", t0) and not reported_after(flows, "fifth", t0)
        status = read_topic(kafka_bootstrap, topic_prefix + "status",
                            lambda ms: any(m.get("kind") == "evaluation" and m["disabled"] for m in ms),
                            timeout=30, decode=json.loads)
        last = [m for m in status if m.get("kind") == "evaluation"][-1]
        assert last["budget_exceeded"] == 1 and set(last["disabled"]) == {"slow"} and last["budget_s"] == 0.05

        # DELETE takes effect: no more reports of the deleted flow, nor the disabled one listed
        assert (await client.delete("/flow/endsx/json")).status == 204
        assert (await client.delete("/flow/slow/json")).status == 204
        deleted_at = time.time()
        # the worker has both deletions: a report round after them has `urls` without `endsx`, and its
        # evaluation status lists no disabled flow (`slow` is gone)
        def gone(ms):
            return report_rounds_without(ms, "urls", "endsx", deleted_at)

        def none_disabled(ms):
            return any(m.get("kind") == "evaluation" and m["time"] / 1000 > deleted_at and m["disabled"] == {}
                       for m in ms)

        assert gone(read_topic(kafka_bootstrap, topic_prefix + "flows", gone, timeout=60))
        assert none_disabled(read_topic(kafka_bootstrap, topic_prefix + "status", none_disabled, timeout=60,
                                        decode=json.loads))
        t2 = time.time()
        publish_kafka(url_datagrams(["/wave3/x"], t2, seq0=2000, rate=1000), ingest_settings(kafka_bootstrap, topic_prefix,
                                                                                  tmp_path))
        flows = read_topic(kafka_bootstrap, topic_prefix + "flows",
                           lambda ms: "/wave3/x" in reported_after(ms, "urls", t2), timeout=60)
        assert "/wave3/x" in reported_after(flows, "urls", t2)
        assert not reported_after(flows, "endsx", t2)
        status = read_topic(kafka_bootstrap, topic_prefix + "status",
                            lambda ms: any(m.get("kind") == "evaluation" and m["time"] / 1000 > t2 for m in ms),
                            timeout=30, decode=json.loads)
        assert [m for m in status if m.get("kind") == "evaluation"][-1]["disabled"] == {}
    finally:
        await client.close()
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    log = worker.log.read_text(errors="replace")
    assert "flow definitions are limited to 4" in log and "threshold:nan" in log
    assert "flow slow disabled" in log
