"""How chat completions travel: one aiohttp session per event loop, configured from the SDK client.

The `openai` SDK's `AsyncOpenAI` stays the configured client object: it normalises the base URL,
turns the API key into its `Authorization` header, owns the default headers, and serves everything
but chat completions (`list_models`). Chat completions, the one call a judge makes thousands of
times, are posted by `ChatTransport` with the URL and headers taken from that SDK client.

Why not `sdk.chat.completions.create`: it walks every body through the SDK's TypedDict transform
and parses each answer into pydantic models, and `sdk.post` still builds httpx2 request and URL
objects; a direct aiohttp post of the JSON bytes costs a fraction of either in client CPU per
request, which is what lets the judge path reach 1,000 requests/s on one core. The figures and their
command are in bench/RESULTS.md ("LLM judging throughput").

What the SDK's transport did and this one keeps: the SDK's headers (User-Agent, X-Stainless-*)
plus its `Authorization`; connect and read timeouts of `timeout_s` (the client adds the
whole-request deadline); the environment's HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, resolved once per
session (aiohttp's own `trust_env` would also read ~/.netrc for every request, off the loop);
the SDK's TLS settings (one `ssl.SSLContext` per client, built the way the SDK builds it, shared
with the SDK's own session). It raises aiohttp's exceptions unchanged; `LLMClient` classifies and
redacts them. Nothing here logs or keeps a request: the headers hold the key.

What it relies on in the SDK (pinned by tests/test_llm_transport_sdk.py, which compares against the
SDK's own requests): `AsyncOpenAI.base_url` ends in "/" so `chat/completions` joins under it;
`default_headers` and `auth_headers` are the per-client headers; the private HTTP module named by
`type(openai.DEFAULT_CONNECTION_LIMITS).__module__` (httpx2 today) has `create_ssl_context()`.
"""

from __future__ import annotations

import importlib
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import openai
import yarl

CHAT_PATH = "chat/completions"


@dataclass(frozen=True)
class HTTPReply:
    """One HTTP answer, read to the end: status, headers (case-insensitive) and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def sdk_ssl_context() -> ssl.SSLContext:
    """The TLS context the SDK's HTTP client would build (its CA bundle, its env handling).

    Built once per `LLMClient` and handed to every session: loading the CA bundle takes ~27 ms,
    which each new SDK client would otherwise pay, even for an http:// endpoint.
    """
    httpx_module = importlib.import_module(type(openai.DEFAULT_CONNECTION_LIMITS).__module__.split(".")[0])
    return httpx_module.create_ssl_context()


def sdk_client(
    *, api_key: str, base_url: str, timeout_s: float, ssl_context: ssl.SSLContext, max_connections: int,
    max_keepalive: int,
) -> openai.AsyncOpenAI:
    """The SDK client of one event loop: `list_models`, and the URL and headers `ChatTransport` uses."""
    limits_type = type(openai.DEFAULT_CONNECTION_LIMITS)  # httpx.Limits or httpx2.Limits
    http_client = openai.DefaultAioHttpClient(
        timeout=timeout_s,
        verify=ssl_context,
        limits=limits_type(max_connections=max_connections, max_keepalive_connections=max_keepalive),
    )
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout_s,
        max_retries=0,  # the client's are the only retries, so each is counted and backed off its way
        http_client=http_client,
    )


def sdk_headers(sdk: openai.AsyncOpenAI) -> dict[str, str]:
    """The headers the SDK sends with every request, its `Authorization` included.

    Headers the SDK leaves out on purpose (its `Omit` markers, e.g. no organisation) are left out.
    """
    headers = {name: value for name, value in sdk.default_headers.items() if isinstance(value, str)}
    headers.update(sdk.auth_headers)
    headers["Content-Type"] = "application/json"
    return headers


def env_proxy_for(url: yarl.URL) -> str | None:
    """The proxy the environment names for `url` (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY; NO_PROXY)."""
    proxies = urllib.request.getproxies_environment()
    if url.host is None or urllib.request.proxy_bypass_environment(url.host, proxies):
        return None
    proxy = proxies.get(url.scheme or "") or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class ChatTransport:
    """POSTs chat completion bodies over one aiohttp session; belongs to the loop that made it."""

    def __init__(
        self,
        sdk: openai.AsyncOpenAI,
        *,
        timeout_s: float,
        max_connections: int,
        ssl_context: ssl.SSLContext,
    ) -> None:
        self.url = yarl.URL(str(sdk.base_url)).join(yarl.URL(CHAT_PATH))
        self.proxy = env_proxy_for(self.url)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, ssl=ssl_context),
            headers=sdk_headers(sdk),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=timeout_s, sock_connect=timeout_s, sock_read=timeout_s
            ),
            trust_env=False,  # proxies are resolved above; trust_env would read ~/.netrc per request
        )

    def __repr__(self) -> str:  # the session's headers hold the key: never show them
        return f"ChatTransport(url={str(self.url)!r})"

    async def post(self, payload: bytes) -> HTTPReply:
        """Send one JSON body and read the whole answer. Raises aiohttp / OS errors as they come."""
        async with self._session.post(
            self.url, data=payload, proxy=self.proxy, allow_redirects=False
        ) as response:
            body = await response.read()
            return HTTPReply(response.status, response.headers, body)

    async def close(self) -> None:
        await self._session.close()


__all__ = [
    "CHAT_PATH", "ChatTransport", "HTTPReply", "env_proxy_for", "sdk_client", "sdk_headers", "sdk_ssl_context",
]
