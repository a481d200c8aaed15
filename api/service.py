"""`sflowpipe api`: the REST API and web UI as a process (reader thread + aiohttp server)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from api.reader import TopicReader
from api.server import Api
from api.state import ApiState
from sflowpipe.config_plane import publish
from schemas.codec import Codec
from sflowpipe.auth import warn_if_open
from sflowpipe.metrics import MetricsServer
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import Settings
from sflowpipe.net import parse_hostport
from api.args import api_arguments as add_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)

log = logging.getLogger(__name__)


class ApiService:
    """Owns the state, the topic reader and the HTTP server."""

    def __init__(self, settings: Settings, listen: str | None = None, clients: KafkaClients | None = None,
                 codec: Codec | None = None) -> None:
        if clients is None or codec is None:
            clients, codec = wiring(settings)
        self.settings = settings
        self.host, self.port = parse_hostport(listen or settings.api.listen, default_host="127.0.0.1",
                                              what="listen address")  # no host: loopback
        self.state = ApiState(settings.api)
        self.reader = TopicReader(settings, self.state, clients, codec)
        self.api = Api(settings, self.state, lambda kind, name, body: publish(settings, kind, name, body,
                                                                              clients=clients))
        self.runner: web.AppRunner | None = None
        self.metrics = MetricsServer(settings.api.metrics_listen, self.api.metrics, 9351)

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
        self.metrics.stop()


def run(settings: Settings, args, clients: KafkaClients | None = None, codec: Codec | None = None) -> int:
    if getattr(args, "read_only", False):
        settings = settings.model_copy(update={"api": settings.api.model_copy(update={"read_only": True})})

    async def main() -> None:
        service = ApiService(settings, getattr(args, "listen", None), clients, codec)
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
