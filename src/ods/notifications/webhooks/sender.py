"""One POST of a delivery: to the checked address, no redirects, a bounded time and answer."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

import httpx

from ods.notifications.webhooks.targets import Target, TargetRefused, resolve

# What is read of an answer: enough for an error message, never a stream's worth.
ANSWER_CAP = 16 * 1024


@dataclass(frozen=True)
class Outcome:
    status: int | None
    duration_ms: int
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410


@dataclass(frozen=True)
class Limits:
    allow: str  # ODS_WEBHOOK_ALLOW
    seconds: float  # the whole attempt, resolving, connecting and answering
    tls: ssl.SSLContext


def _address_url(target: Target) -> str:
    host = f"[{target.address}]" if ":" in target.address else target.address
    return str(httpx.URL(target.url).copy_with(host=host, port=target.port))


async def _post(
    target: Target, body: bytes, headers: dict[str, str], limits: Limits
) -> tuple[int, str]:
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    async with httpx.AsyncClient(
        verify=limits.tls, trust_env=False, follow_redirects=False, timeout=limits.seconds
    ) as client:
        request = client.build_request(
            "POST",
            _address_url(target),
            content=body,
            headers={**headers, "Host": host_header},
            # TLS names and checks the host, though the connection goes to the checked address.
            extensions={"sni_hostname": target.host},
        )
        response = await client.send(request, stream=True)
        answer = bytearray()
        try:
            async for piece in response.aiter_raw():
                answer.extend(piece[: ANSWER_CAP - len(answer)])
                if len(answer) >= ANSWER_CAP:
                    break
        finally:
            await response.aclose()
    if 300 <= response.status_code < 400:
        where = response.headers.get("location", "")
        return response.status_code, f"redirect to {where} not followed"
    return response.status_code, bytes(answer).decode("utf-8", "replace").strip()[:300]


async def send(url: str, body: bytes, headers: dict[str, str], limits: Limits) -> Outcome:
    """Post once; the outcome says what came back, or what went wrong."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(limits.seconds):
            target = await resolve(url, limits.allow)
            status, text = await _post(target, body, headers, limits)
    except TargetRefused as exc:
        return Outcome(None, took(), f"refused: {exc}")
    except TimeoutError:
        return Outcome(None, took(), f"no answer within {limits.seconds:g} s")
    except httpx.HTTPError as exc:
        return Outcome(None, took(), f"{type(exc).__name__}: {exc}".rstrip(": "))
    except OSError as exc:
        return Outcome(None, took(), str(exc) or type(exc).__name__)
    if 200 <= status < 300:
        return Outcome(status, took(), None)
    return Outcome(status, took(), f"answered {status}" + (f": {text}" if text else ""))
