"""processors/fetch_wait.py: the worker's consumer fetches wait fetch_max_wait_ms, not Faust's 1.5 s."""

import pytest

from processors.app import make_app
from sflowpipe.settings import load_settings


@pytest.mark.asyncio
async def test_the_worker_consumer_waits_the_configured_time(tmp_path):
    settings = load_settings(**{"kafka.bootstrap_servers": "127.0.0.1:1", "processors.data_dir": str(tmp_path),
                                "enrich.office365_enabled": False, "processors.fill_stream_gaps": False,
                                "processors.fetch_max_wait_ms": 70})
    app = make_app(settings)
    app.finalize()
    transport = app.transport
    consumer = app.consumer  # what the worker consumes with
    worker_consumer = consumer._new_consumer_thread()._create_worker_consumer(transport)
    assert worker_consumer._fetch_max_wait_ms == 70  # read by aiokafka when the consumer starts
    assert load_settings().processors.fetch_max_wait_ms == 100
