"""One webhook HTTP request: address checks against SSRF, a hard timeout, and a short record
of the answer. Failures of the receiver (refused, timeout, non-2xx, blocked address) come back
as a failed ``HttpResult``; anything raised from here is a fault in Kassa itself."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

MAX_EXCERPT = 1024
# Bodies up to this size are read to the end so the connection can be reused; larger ones are
# cut off (and the connection dropped) rather than downloaded.
_MAX_DRAIN = 64 * 1024
_RESOLVE_TTL = 30.0
USER_AGENT = "Kassa/1.0 (+webhooks)"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Blocked(Exception):
    """The URL resolves to an address webhooks may not reach."""


@dataclass(frozen=True, slots=True)
class HttpResult:
    succeeded: bool
    status_code: int | None
    latency_ms: int
    body: str | None
    error: str | None


def _allowed(ip: IpAddress, *, livemode: bool, allow_private: bool) -> bool:
    if allow_private:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_global:
        return True
    # Test mode may reach this machine so developers can point an endpoint at localhost;
    # private networks, link-local (cloud metadata) and the rest stay out of reach.
    return not livemode and ip.is_loopback


def check_address(host: str, *, livemode: bool, allow_private: bool) -> None:
    """Reject an IP-literal host that can never be reached (checked when an endpoint is
    saved; names are checked when they are resolved, at every delivery)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if not _allowed(ip, livemode=livemode, allow_private=allow_private):
        raise Blocked(f"{host} is not a public address")


class Resolver:
    """Resolves a host, checks every address it has, and remembers the answer briefly. The
    request then goes to the checked address itself, so a second lookup (DNS rebinding) cannot
    swap in another."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, bool, bool], tuple[float, str]] = {}

    async def address(self, host: str, port: int, *, livemode: bool, allow_private: bool) -> str:
        key = (host, port, livemode, allow_private)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            ips: list[IpAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            ips = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not ips:
            raise Blocked(f"{host} has no address")
        for ip in ips:
            if not _allowed(ip, livemode=livemode, allow_private=allow_private):
                raise Blocked(f"{host} resolves to {ip}, which is not a public address")
        chosen = str(ips[0])
        self._cache[key] = (now + _RESOLVE_TTL, chosen)
        return chosen


def _pinned(url: str, ip: str) -> tuple[str, str, str]:
    """``url`` with its host replaced by ``ip``; also the Host header and the TLS name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc_ip = f"[{ip}]" if ":" in ip else ip
    if parts.port is not None:
        netloc_ip += f":{parts.port}"
    host_header = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc_ip)), host_header, host


async def post(
    client: httpx.AsyncClient,
    resolver: Resolver,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    livemode: bool,
    allow_private: bool,
    time_limit: float,
) -> HttpResult:
    """POST ``body`` to ``url`` within ``time_limit`` seconds in all."""
    started = time.perf_counter()

    def failed(error: str, status: int | None = None, excerpt: str | None = None) -> HttpResult:
        latency = int((time.perf_counter() - started) * 1000)
        return HttpResult(False, status, latency, excerpt, error[:500])

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(time_limit):
            ip = await resolver.address(
                parts.hostname or "", port, livemode=livemode, allow_private=allow_private
            )
            target, host_header, tls_name = _pinned(url, ip)
            request_headers = {
                **headers,
                "Host": host_header,
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json; charset=utf-8",
            }
            async with client.stream(
                "POST",
                target,
                content=body,
                headers=request_headers,
                extensions={"sni_hostname": tls_name},
            ) as response:
                excerpt = bytearray()
                read = 0
                async for chunk in response.aiter_bytes():
                    if len(excerpt) < MAX_EXCERPT:
                        excerpt += chunk[: MAX_EXCERPT - len(excerpt)]
                    read += len(chunk)
                    if read > _MAX_DRAIN:
                        break
                status = response.status_code
    except Blocked as exc:
        return failed(f"blocked: {exc}")
    except TimeoutError:
        return failed(f"timeout: no complete answer within {time_limit:g}s")
    except httpx.TimeoutException:
        return failed(f"timeout: no complete answer within {time_limit:g}s")
    except httpx.HTTPError as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    except OSError as exc:  # name resolution and socket errors outside httpx
        return failed(f"{type(exc).__name__}: {exc}")
    text = excerpt.decode("utf-8", errors="replace")
    latency = int((time.perf_counter() - started) * 1000)
    if 200 <= status < 300:
        return HttpResult(True, status, latency, text, None)
    return HttpResult(False, status, latency, text, f"HTTP {status}")
