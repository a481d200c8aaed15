"""The status page and /analyzer read every component's own metrics, on the real broker:
`sflowpipe control`'s status messages reach the API's /sflowpipe/status/json, /analyzer/json and
/prometheus/analyzer/txt through the status topic; the API's own numbers (requests, long-polls
open) come from its own registry."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import aiohttp
import pytest

from api.service import ApiService
from sflowpipe.kafka import wiring
from tests.sinks.control.test_service_kafka import Clock, event, make_settings, started, stopped
from tests.sinks.http_server import RecordingServer

pytestmark = pytest.mark.kafka


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    """``await check()`` until it returns something truthy (the event loop keeps serving meanwhile)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout:g} s")


def api_settings(settings):
    """The API on any free port, its /metrics too (tests run beside other processes)."""
    return settings.model_copy(update={"api": settings.api.model_copy(update={"metrics_listen": "127.0.0.1:0"})})


async def started_api(settings) -> ApiService:
    service = ApiService(settings.api, settings.kafka, settings.topics, settings.limits, *wiring(settings),
                         listen="127.0.0.1:0")
    await service.start()
    return service


@pytest.mark.asyncio
async def test_control_status_reaches_the_status_page_and_analyzer(kafka_bootstrap, topic_prefix):
    clock = Clock()
    with RecordingServer() as ctl:
        settings = api_settings(make_settings(kafka_bootstrap, topic_prefix, ctl.url))
        svc = started(settings, clock)
        svc.on_event(event(clock, key="10.1.2.3,53"))  # allow-listed: refused
        svc.on_event(event(clock))  # applied
        svc.on_event(event(clock, key="192.0.2.11,53"))  # applied
        stopped(svc)  # its final numbers on the status topic
    assert [c.method for c in ctl.requests] == ["POST", "POST"]
    api = await started_api(settings)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{api.port}") as http:
            async def get(path: str) -> Any:
                async with http.get(path) as r:
                    assert r.status == 200, await r.text()
                    return await r.json() if path.endswith("/json") else await r.text()

            async def controls() -> list[dict]:
                return (await get("/sflowpipe/status/json"))["controls"]

            [row] = await eventually(controls, 30)
            assert row["component"] == svc.group and row["instance"] == svc.instance and row["alive"]
            assert {k: row[k] for k in ("active", "applied", "released", "refused", "failed", "dead_letters",
                                        "group_shared")} == {"active": 2, "applied": 2, "released": 0, "refused": 1,
                                                             "failed": 0, "dead_letters": 0, "group_shared": 0}
            a = await get("/analyzer/json")
            assert {k: a[k] for k in ("controlInstances", "controlActive", "controlApplied", "controlReleased",
                                      "controlRefused", "controlFailed")} == {
                "controlInstances": 1, "controlActive": 2, "controlApplied": 2, "controlReleased": 0,
                "controlRefused": 1, "controlFailed": 0}
            assert a["processorWorkers"] == 0 and a["sinkInstances"] == 0  # kinds not mixed up
            text = await get("/prometheus/analyzer/txt")
            assert "sflow_analyzer_control_applied_total 2\n" in text and "sflow_analyzer_control_active 2\n" in text
    finally:
        await api.stop()


@pytest.mark.asyncio
async def test_the_api_shows_its_own_requests_and_open_long_polls(kafka_bootstrap, topic_prefix):
    settings = api_settings(make_settings(kafka_bootstrap, topic_prefix, "http://127.0.0.1:9"))
    api = await started_api(settings)
    running = True
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{api.port}") as http:
            async def get(path: str, **kw) -> Any:
                async with http.get(path, **kw) as r:
                    return r.status, await r.json()

            for _ in range(5):
                assert (await get("/flow/json")) == (200, {})
            _, a = await get("/analyzer/json")
            assert a["apiRequests"] == 5 and a["apiLongPollsOpen"] == 0 and a["apiUnauthorized"] == 0

            polls = [asyncio.create_task(get(f"/{kind}/json?{cursor}=999999&timeout=60"))
                     for kind, cursor in (("events", "eventID"), ("flows", "flowID"))]

            async def both_open() -> dict | None:
                a = (await get("/analyzer/json"))[1]
                return a if a["apiLongPollsOpen"] == 2 else None

            a = await eventually(both_open, 30)
            assert a["apiRequests"] >= 6  # the polls are not answered yet: not counted yet
            assert not any(p.done() for p in polls)

            async def api_row() -> dict | None:  # the status page's row: every 2 s, with its rate
                rows = (await get("/sflowpipe/status/json"))[1]["api"]
                return rows[0] if rows and rows[0]["per_s"] > 0 and rows[0]["long_polls_open"] == 2 else None

            row = await eventually(api_row, 30)
            assert row["instance"] == api.api.instance and row["component"] == "sflowpipe-api" and row["alive"]
            assert row["requests"] >= 7 and row["unauthorized"] == 0
            running = False
            await api.stop()  # answers the open long-polls at once
            assert [await p for p in polls] == [(200, []), (200, [])]
    finally:
        if running:
            await api.stop()
    assert api.api.metrics.get("sflowpipe_api_long_polls_open") == 0
    assert api.api.own_status()["long_polls_open"] == 0


@pytest.mark.asyncio
async def test_the_status_page_shows_each_sink_groups_exact_lag_on_apache_kafka(apache_kafka, topic_prefix):
    """A sink group's lag on the status page is its end offsets minus its committed offsets, summed
    over the partitions it committed: exact on Apache Kafka (its end offsets are the messages
    produced), and it follows the group's commits down to zero. Always on Apache Kafka: Tansu's high
    watermarks can lag its log (after one produce request with batches for several partitions, all
    three read 1 here although they held 40, 7 and 23 messages), so there the page shows 0 for 25."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    kafka_bootstrap = apache_kafka.bootstrap

    topic, group, idle = topic_prefix + "enriched", topic_prefix + "sink", topic_prefix + "never-committed"
    produced = {0: 40, 1: 7, 2: 23}  # messages per partition: the end offsets
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, len(produced), 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for partition, n in produced.items():
        for i in range(n):
            producer.produce(topic, value=b"%d" % i, partition=partition)
    assert producer.flush(30) == 0
    committer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False})

    def commit(offsets: dict[int, int]) -> None:
        committer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)

    base = make_settings(kafka_bootstrap, topic_prefix, "http://127.0.0.1:9")
    settings = api_settings(base.model_copy(update={"api": base.api.model_copy(update={"sinks": [group, idle]})}))
    steps = [{0: 15, 1: 7}, {0: 39, 1: 7, 2: 1}, dict(produced)]  # partition 2 first never committed: not counted
    commit(steps[0])
    api = await started_api(settings)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{api.port}") as http:
            last: dict = {}
            for offsets in steps:
                commit(offsets)
                want = sum(produced[p] - o for p, o in offsets.items())

                async def lag_of_these_commits() -> dict | None:
                    # the API probes every 5 s: wait for a probe after this commit, then it must be exact
                    async with http.get("/sflowpipe/status/json") as r:
                        sinks = (await r.json())["sinks"]
                    return sinks if group in sinks and sinks[group] != previous else None

                previous = last.get(group)  # each step's lag differs from the one before
                last = await eventually(lag_of_these_commits, 30)
                assert last == {group: want, idle: None}, (offsets, last)
    finally:
        await api.stop()
        committer.close()
