"""How long the worker's Kafka fetches wait for data: faust-streaming fixes it at 1.5 s.

A fetch that finds nothing new waits up to ``fetch.max.wait`` for data. Apache Kafka answers it as
soon as data arrives; Tansu (the embedded broker of ``sflowpipe up``) answers only when the wait is
over (measured: a message produced into a caught-up partition reached a consumer after its whole
wait: 1.5 s at Faust's setting, 10 ms at 100 ms). A worker that keeps up is always in that state,
so every batch waited up to 1.5 s before the worker saw it: the largest part of the delay from
traffic over a threshold to its event (bench/threshold.py). ``transport_with_fetch_wait`` is
Faust's aiokafka transport with the worker consumer's wait set; the app uses it for its consumer.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as driver


def transport_with_fetch_wait(fetch_max_wait_ms: int) -> type:
    """Faust's aiokafka Transport whose worker consumer's fetches wait at most ``fetch_max_wait_ms``."""

    class ConsumerThread(driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # aiokafka hands it to its fetcher when the consumer starts, after this
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class Consumer(driver.Consumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(driver.Transport):
        pass

    Transport.Consumer = Consumer
    return Transport


def use_fetch_wait(app: Any, fetch_max_wait_ms: int) -> None:
    """``app`` consumes through ``transport_with_fetch_wait`` (its producer transport is unchanged)."""
    transport = transport_with_fetch_wait(fetch_max_wait_ms)
    app._new_transport = lambda: transport(app.conf.broker_consumer, app)
