"""`sflowpipe api`: the REST API and web UI as a process (reader thread + aiohttp server)."""

from __future__ import annotations

import asyncio
import logging
import signal
from functools import partial
from typing import Any

from aiohttp import web

from api.history import ClickHouseReader, History
from api.reader import TopicReader
from api.server import Api
from api.state import ApiState
from sflowpipe.config_plane import publish_to, startup_definitions
from schemas.codec import Codec
from sflowpipe.auth import warn_if_open
from sflowpipe.metrics import MetricsServer
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import ApiSettings, ClickHouseSettings, KafkaSettings, LimitSettings, Settings, TopicNames
from sflowpipe.net import parse_hostport
from api.args import api_arguments as add_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)

log = logging.getLogger(__name__)


class ApiService:
    """Owns the state, the topic reader and the HTTP server."""

    def __init__(self, cfg: ApiSettings, kafka: KafkaSettings, topics: TopicNames, limits: LimitSettings,
                 clients: KafkaClients, codec: Codec, definitions: list[tuple[str, str, Any]] = (),
                 listen: str | None = None, clickhouse: ClickHouseSettings | None = None) -> None:
        """``kafka`` and ``topics`` name the topics; ``definitions``: the start-up ones; ``clickhouse``:
        the ClickHouse sink's settings, read by /history/* (None: those answer 503)."""
        self.cfg = cfg
        self.host, self.port = parse_hostport(listen or cfg.listen, default_host="127.0.0.1",
                                              what="listen address")  # no host: loopback
        self.state = ApiState(cfg)
        self.reader = TopicReader(cfg, self.state, kafka, topics, limits, clients, codec, definitions)
        self.clickhouse = ClickHouseReader(clickhouse) if clickhouse is not None else None
        self.api = Api(cfg, limits, self.state, partial(publish_to, clients, kafka.topic(topics.config)),
                       History(self.clickhouse) if self.clickhouse else None)
        self.runner: web.AppRunner | None = None
        self.metrics = MetricsServer(cfg.metrics_listen, self.api.metrics, 9351)

    async def start(self) -> None:
        self.metrics.start()
        self.reader.start()
        # a handler still running this long after SIGTERM is cut off (long-polls end at once, see stop)
        self.runner = web.AppRunner(self.api.app(), access_log=None, shutdown_timeout=3.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        self.api.closing.set()
        if self.runner:
            await self.runner.cleanup()
        self.reader.stop()
        if self.clickhouse:
            self.clickhouse.close()
        self.metrics.stop()


def run(settings: Settings, args, clients: KafkaClients | None = None, codec: Codec | None = None) -> int:
    if getattr(args, "read_only", False):
        settings = settings.model_copy(update={"api": settings.api.model_copy(update={"read_only": True})})
    if clients is None or codec is None:
        clients, codec = wiring(settings)

    async def main() -> None:
        service = ApiService(settings.api, settings.kafka, settings.topics, settings.limits, clients, codec,
                             startup_definitions(settings), getattr(args, "listen", None), settings.sinks.clickhouse)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        await service.start()
        log.info("api: REST API and web UI on http://%s:%d/ (%s, %s)", service.host, service.port,
                 "read-only" if settings.api.read_only else "read-write",
                 "authentication required" if service.api.auth.required else "no authentication")
        log.info("api: metrics %s", service.metrics.url)
        warn_if_open(log, "api", service.host, service.api.auth, settings.api)
        await done.wait()
        await service.stop()

    try:
        asyncio.run(main())
    except OSError as e:
        log.error("api: %s", e)
        return 2
    return 0
