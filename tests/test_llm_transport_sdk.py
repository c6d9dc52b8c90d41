"""What `rm_rewards.llm.transport` takes from the OpenAI SDK, pinned against the installed SDK.

The transport posts chat completions itself, with the URL, headers and TLS settings it reads from
the SDK client, partly through the SDK's private HTTP module. An SDK release that changes any of
these must fail here, loudly, rather than make the judge send other requests than the SDK would.
Each test compares with what the SDK itself does, over real HTTP to the fake server."""

from __future__ import annotations

import asyncio
import json
import ssl

import openai
import pytest

from rm_rewards.llm.transport import CHAT_PATH, ChatTransport, sdk_headers, sdk_ssl_context
from tests.support.fake_openai import ThreadedFakeOpenAI, reply

# Sent by the SDK per request (retry bookkeeping, timeouts, idempotency), not per client: the
# transport cannot and need not reproduce them.
PER_REQUEST_HEADERS = {"x-stainless-retry-count", "x-stainless-read-timeout", "x-stainless-timeout",
                       "idempotency-key", "content-length", "host", "accept-encoding", "connection"}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def server():
    with ThreadedFakeOpenAI() as fake:
        fake.set_default(reply('{"score": 1}'))
        yield fake


def _client_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in PER_REQUEST_HEADERS}


def _sdk_request(base_url: str) -> None:
    async def call():
        async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-pin-test", max_retries=0) as sdk:
            await sdk.chat.completions.create(**BODY)

    asyncio.run(call())


def _transport_request(base_url: str) -> None:
    async def call():
        sdk = openai.AsyncOpenAI(base_url=base_url, api_key="sk-pin-test", max_retries=0)
        transport = ChatTransport(sdk, timeout_s=10, max_connections=4, ssl_context=sdk_ssl_context())
        try:
            reply_ = await transport.post(json.dumps(BODY).encode())
            assert reply_.status == 200
        finally:
            await transport.close()
            await sdk.close()

    asyncio.run(call())


@pytest.mark.parametrize("suffix", ["/v1", "/v1/"])
def test_the_transport_sends_the_sdks_headers_to_the_sdks_url(server, suffix):
    base_url = server.base_url.rstrip("/").removesuffix("/v1") + suffix
    _sdk_request(base_url)
    _transport_request(base_url)
    sdk_sent, ours = server.requests[-2], server.requests[-1]
    assert _client_headers(ours["headers"]) == _client_headers(sdk_sent["headers"])
    assert ours["headers"]["Authorization"] == "Bearer sk-pin-test"
    assert any(k.lower().startswith("x-stainless-") for k in ours["headers"])  # the SDK's identity headers
    assert ours["body"] == sdk_sent["body"] == BODY


def test_sdk_attributes_the_transport_reads_still_exist():
    sdk = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-x")
    # base_url is normalised with a trailing slash, so joining CHAT_PATH keeps the /v1 prefix.
    assert str(sdk.base_url) == "http://127.0.0.1:9/v1/"
    assert CHAT_PATH == "chat/completions"
    assert sdk.auth_headers == {"Authorization": "Bearer sk-x"}
    assert "User-Agent" in sdk.default_headers
    headers = sdk_headers(sdk)
    assert headers["Authorization"] == "Bearer sk-x" and headers["Content-Type"] == "application/json"
    assert all(isinstance(v, str) for v in headers.values())  # the SDK's Omit markers are dropped


def test_the_private_http_module_still_builds_the_sdks_tls_context():
    """`sdk_ssl_context` finds the SDK's HTTP library through `DEFAULT_CONNECTION_LIMITS`' module and
    calls its `create_ssl_context`; both must still be there and give a verifying context."""
    module = type(openai.DEFAULT_CONNECTION_LIMITS).__module__.split(".")[0]
    assert module in ("httpx", "httpx2"), module
    context = sdk_ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
