"""The sandbox world: one clock, one scheduler and one HTTP client shared by every service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from kassa.sandbox.clock import Clock, Scheduler

if TYPE_CHECKING:
    from kassa.sandbox.service import Service


class World:
    """Shared time and plumbing for the services that live in one sandbox process.

    Time is one world time: advancing the clock through any service's admin endpoint moves it
    for all of them, as it would for real companies sharing a calendar.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.clock = Clock()
        self.scheduler = Scheduler(self.clock)
        self.services: dict[str, Service] = {}
        self._http: httpx.AsyncClient | None = None

    def http(self) -> httpx.AsyncClient:
        """Return the client used for outbound webhooks (created on first use)."""
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=64))
        return self._http

    def add(self, service: Service) -> None:
        """Register a service under its short name."""
        self.services[service.name] = service

    def start(self) -> None:
        """Start background time: the scheduler and every service's recurring jobs."""
        for service in self.services.values():
            service.start()
        self.scheduler.start()

    async def close(self) -> None:
        """Stop background work and close the outbound HTTP client."""
        await self.scheduler.stop()
        for service in self.services.values():
            await service.webhooks.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
