"""The Faust agents through Faust's own test context (no broker): a flow-sample batch in,
the enriched batch out, flows and events from the reporting timer's engine."""

from __future__ import annotations

import time
from unittest import mock

import pytest

from ingest.batches import AgentBatches
from ingest.generate import Generator
from ingest.sflow import decode_datagram
from processors.app import make_app
from schemas.codec import AvroCodec
from sflowpipe.settings import load_settings


@pytest.fixture
def app(tmp_path):
    settings = load_settings(**{
        "kafka.bootstrap_servers": "127.0.0.1:1", "processors.data_dir": str(tmp_path / "faust"),
        "enrich.office365_enabled": False, "processors.fill_stream_gaps": False,  # no broker here
        "processors.flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes"}},
        "processors.thresholds": {"elephant": {"metric": "pair", "value": 1000.0, "byFlow": True}},
    })
    app = make_app(settings)
    app.finalize()
    app.conf.store = "memory://"
    return app


def flow_message() -> bytes:
    gen = Generator(agents=1, sampling_rate=100, seed=2)
    batches = AgentBatches(10_000, 1e9)
    for i in range(30):
        # received now: a batch received long ago counts at its receive time (a replay, processors/app.py)
        batches.add(decode_datagram(gen.datagram(now=i * 0.05)), "192.0.2.1", time.time_ns() // 1000)
    flow = [b for b in batches.drain() if b.kind == "flow"][0]
    return AvroCodec("flow_sample_batch").encode(flow.datum)


@pytest.mark.asyncio
async def test_flow_agent_enriches_and_feeds_the_engine(app):
    sent = []

    async def fake_send(self, *args, key=None, value=None, **kw):
        sent.append((self.get_topic_name(), key, value))

    agent = app.agents["flow-samples"]
    with mock.patch("faust.topics.Topic.send", fake_send), mock.patch.object(app.tables["agent-state"], "__setitem__"):
        async with agent.test_context() as ctx:
            await ctx.put(flow_message(), key=b"192.0.2.200")
    assert len(sent) == 1 and sent[0][0].endswith("enriched-flow-samples")
    enriched = AvroCodec("enriched_flow_sample_batch").decode(sent[0][2])
    assert len(enriched["src_country"]) == len(enriched["sequence_number"]) == 180
    engine = app.sflowpipe_engine
    active, _, events = engine.report()
    assert active and active[0]["flow"] == "pair" and active[0]["agent"] == "192.0.2.200"
    assert {e.flowKey for e in events} >= {"10.1.0.10,192.0.2.10"}
