"""ServiceClient against a real HTTP server on loopback that answers the way the service does."""

from __future__ import annotations

import logging
import socket

import pytest
from cctv_ingest import __version__
from cctv_ingest.client import ServiceClient, ServiceError
from cctv_ingest.secret import Secret

from .conftest import ME, REQUEST_ID, TOKEN, FakeService, TlsFiles


@pytest.fixture
def client(fake_service: FakeService) -> ServiceClient:
    return ServiceClient(fake_service.url, TOKEN, timeout=5)


def call_error(client: ServiceClient, path: str) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        client.request("GET", path)
    return caught.value


# -- what every call sends ------------------------------------------------------------------------------


def test_whoami_sends_token_user_agent_and_request_id(
    client: ServiceClient, fake_service: FakeService
) -> None:
    assert client.whoami() == ME

    (seen,) = fake_service.requests
    assert (seen.method, seen.path) == ("GET", "/v1/me")
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["User-Agent"] == f"cctv-ingest/{__version__}"
    assert seen.headers["Accept"] == "application/json"
    assert REQUEST_ID.fullmatch(seen.headers["X-Request-ID"])


def test_each_call_has_its_own_request_id(client: ServiceClient, fake_service: FakeService) -> None:
    client.whoami()
    client.whoami()

    first, second = (seen.headers["X-Request-ID"] for seen in fake_service.requests)
    assert first != second


def test_health_needs_no_token(client: ServiceClient, fake_service: FakeService) -> None:
    assert client.health() == {"status": "ok"}

    (seen,) = fake_service.requests
    assert seen.path == "/healthz"
    assert "Authorization" not in seen.headers
    assert REQUEST_ID.fullmatch(seen.headers["X-Request-ID"])


def test_request_sends_a_json_body(client: ServiceClient, fake_service: FakeService) -> None:
    body = {"camera": "cam-entrance", "sha256": "ab" * 32, "note": "café"}

    answer = client.request("POST", "/v1/echo", json_body=body)

    assert answer == {"method": "POST", "content_type": "application/json", "body": body}


def test_a_secret_token_is_accepted(fake_service: FakeService) -> None:
    client = ServiceClient(fake_service.url + "/", Secret(TOKEN), timeout=5)

    assert client.whoami()["principal"]["kind"] == "agent"


def test_wrong_token_is_refused_by_the_service(fake_service: FakeService) -> None:
    client = ServiceClient(fake_service.url, "not-the-token", timeout=5)

    with pytest.raises(ServiceError) as caught:
        client.whoami()

    assert (caught.value.status, caught.value.code, caught.value.retryable) == (401, "unauthenticated", False)


# -- errors ---------------------------------------------------------------------------------------------


def test_service_error_carries_the_error_body(client: ServiceClient, fake_service: FakeService) -> None:
    error = call_error(client, "/status/404")

    sent_id = fake_service.requests[-1].headers["X-Request-ID"]
    assert error.status == 404
    assert error.code == "status_404"
    assert error.message == "answered 404"
    assert error.details == {"n": 404}
    assert error.request_id == f"srv-{sent_id}"  # the service's id, from the body
    assert error.retryable is False
    assert error.retry_after is None
    assert str(error) == f"status_404: answered 404 (HTTP 404, request id srv-{sent_id})"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_retryable_is_5xx_and_429_only(client: ServiceClient, status: int, retryable: bool) -> None:
    error = call_error(client, f"/status/{status}")

    assert (error.status, error.code, error.retryable) == (status, f"status_{status}", retryable)


def test_429_passes_on_retry_after(client: ServiceClient) -> None:
    assert call_error(client, "/status/429").retry_after == 7.0


def test_request_id_falls_back_to_the_one_sent(client: ServiceClient, fake_service: FakeService) -> None:
    error = call_error(client, "/status-no-id/409")

    assert error.code == "no_id"
    assert error.request_id == fake_service.requests[-1].headers["X-Request-ID"]


@pytest.mark.parametrize(("status", "retryable"), [(502, True), (400, False)])
def test_non_json_error_body(client: ServiceClient, status: int, retryable: bool) -> None:
    error = call_error(client, f"/html/{status}")

    assert (error.status, error.code, error.retryable) == (status, "unexpected_response", retryable)
    assert "text/html" in error.message
    assert "Bad Gateway" not in error.message  # bodies are not repeated


@pytest.mark.parametrize("path", ["/not-json", "/list"])
def test_a_success_that_is_not_a_json_object(client: ServiceClient, path: str) -> None:
    error = call_error(client, path)

    assert (error.status, error.code, error.retryable) == (200, "unexpected_response", False)


def test_an_empty_success_is_an_empty_object(client: ServiceClient) -> None:
    assert client.request("GET", "/empty") == {}


def test_redirects_are_not_followed(client: ServiceClient, fake_service: FakeService) -> None:
    error = call_error(client, "/redirect")

    assert (error.status, error.code, error.retryable) == (302, "unexpected_redirect", False)
    assert [seen.path for seen in fake_service.requests] == ["/redirect"]  # the token went nowhere else


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ServiceClient(f"http://127.0.0.1:{port}", TOKEN, timeout=5)

    with pytest.raises(ServiceError) as caught:
        client.health()

    error = caught.value
    assert (error.status, error.code, error.retryable) == (None, "connection_error", True)
    assert REQUEST_ID.fullmatch(error.request_id)
    assert "no HTTP response" in str(error)


def test_timeout_is_retryable(fake_service: FakeService) -> None:
    client = ServiceClient(fake_service.url, TOKEN, timeout=0.2)

    with pytest.raises(ServiceError) as caught:
        client.request("GET", "/slow")

    assert (caught.value.status, caught.value.code, caught.value.retryable) == (None, "timeout", True)


# -- TLS ------------------------------------------------------------------------------------------------


def test_tls_is_verified(tls_service: tuple[FakeService, TlsFiles]) -> None:
    service, _ = tls_service
    client = ServiceClient(service.url, TOKEN, timeout=5)

    with pytest.raises(ServiceError) as caught:
        client.health()

    assert (caught.value.code, caught.value.retryable) == ("tls_error", False)
    assert service.requests == []


def test_ca_file_adds_a_trusted_ca(tls_service: tuple[FakeService, TlsFiles]) -> None:
    service, files = tls_service
    client = ServiceClient(service.url, TOKEN, timeout=5, ca_file=files.cert)

    assert client.whoami() == ME


# -- what is refused before anything is sent, and what is never logged ---------------------------------


@pytest.mark.parametrize("token", ["", "two words", "tok\r\nX-Injected: 1", "tökén"])
def test_unusable_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError, match="token") as caught:
        ServiceClient("https://cctv.example.org", token, timeout=5)

    assert token not in str(caught.value) or not token


@pytest.mark.parametrize("url", ["http://cctv.example.org", "ftp://cctv.example.org", "https://"])
def test_unsafe_base_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is the config's, tested there
        ServiceClient(url, TOKEN, timeout=5)


def test_paths_must_be_relative_to_the_base_url(client: ServiceClient) -> None:
    with pytest.raises(ValueError, match="path"):
        client.request("GET", "https://elsewhere.example.org/v1/me")


def test_repr_hides_the_token(client: ServiceClient) -> None:
    assert TOKEN not in repr(client)
    assert "hidden" in repr(client)


def test_logs_have_request_ids_but_no_token_or_body(
    client: ServiceClient, fake_service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cctv_ingest")

    client.request("POST", "/v1/echo?camera=cam-entrance", json_body={"marker": "body-marker-5150"})
    call_error(client, "/status/500")

    sent_ids = [seen.headers["X-Request-ID"] for seen in fake_service.requests]
    assert all(request_id in caplog.text for request_id in sent_ids)
    assert TOKEN not in caplog.text
    assert "body-marker-5150" not in caplog.text
    assert "answered 500" not in caplog.text  # the error body's message stays out too
    assert "cam-entrance" not in caplog.text  # query strings are left out
