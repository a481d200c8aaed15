"""A Faust worker in registry mode on the real broker: a schema registry that does not answer for a
while (restarting: 503) delays the sample batches it names; the agent decodes them again with backoff
and never skips them as undecodable."""

from __future__ import annotations

import pytest

from bench.clickhouse import produce
from schemas.codec import AvroCodec
from sflowpipe.kafka import make_codec
from sflowpipe.settings import load_settings
from tests.processors.processor_harness import ProcessorProcess
from tests.processors.test_app_agents import flow_message
from tests.schema_registry import outage, serve
from tests.waiting import until

pytestmark = pytest.mark.kafka


def test_a_registry_outage_delays_flow_batches_and_loses_none(kafka_bootstrap, topic_prefix, tmp_path):
    srv, registry = serve()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    defs = {"flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes"}}}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id=f"{topic_prefix}app",
                              extra_env={"SFLOWPIPE_KAFKA__SCHEMA_REGISTRY_URL": url})
    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.schema_registry_url": url})
    batch = AvroCodec("flow_sample_batch").decode(flow_message())
    writer = make_codec(settings.kafka, settings.topics)  # an ingester's codec: registers, frames as Confluent
    message = writer.encode("flow_sample_batch", batch)
    try:
        worker.start()
        with outage(registry) as refused:
            produce(kafka_bootstrap, topic_prefix + "flow-samples", [(batch["agent_address"].encode(), message)])
            # asked again: two lookups at least (the registry client asks 4 times each)
            until(lambda: len(refused) >= 8, 60,
                  message=lambda: f"asked {len(refused)} times: the batch was not decoded again; "
                                  f"{worker.log.read_text(errors='replace')[-2000:]}")
            m = worker.metrics()
            assert m.value("sflowpipe_processors_batches_total", kind="flow") == 0
            assert m.value("sflowpipe_processors_registry_waits_total", kind="flow") >= 1
        until(lambda: worker.metrics().value("sflowpipe_processors_batches_total", kind="flow") == 1, 60,
              message=lambda: worker.log.read_text(errors="replace")[-2000:])
        m = worker.metrics()
        assert m.value("sflowpipe_processors_undecodable_total") == 0
        assert m.value("sflowpipe_processors_samples_total", kind="flow") == len(batch["receive_time_us"])
        text = worker.log.read_text(errors="replace")
        assert text.count("decoding waits for the registry") == 1  # once per outage
        assert "schema registry answers again" in text
    finally:
        worker.stop()
        srv.shutdown()
