"""The HTTP conventions every resource shares, seen from outside: headers, auth schemes, rate
limits, health, metrics and the OpenAPI document."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import start_api, stop_api
from tests.factories import new_merchant


@pytest.fixture
async def key(db):
    return (await new_merchant(db)).key("secret")


def test_request_id_on_every_response(api_url, key):
    ok = httpx.get(f"{api_url}/v1/customers", headers={"Authorization": f"Bearer {key}"})
    missing = httpx.get(f"{api_url}/v1/nothing-here", headers={"Authorization": f"Bearer {key}"})
    unauth = httpx.get(f"{api_url}/v1/customers")
    for r in (ok, missing, unauth):
        assert r.headers["request-id"].startswith("req_")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert unauth.status_code == 401
    assert unauth.json()["error"]["type"] == "invalid_request_error"


def test_basic_auth_with_key_as_user_and_form_and_json_bodies(api_url, key):
    basic = base64.b64encode(f"{key}:".encode()).decode()
    form = httpx.post(
        f"{api_url}/v1/customers",
        headers={"Authorization": f"Basic {basic}"},
        content=b"email=f%40example.com&metadata[a]=1&expand[]=",
    )
    # ``expand[]=`` with an empty path is a bad expansion, answered as such.
    assert form.status_code == 400
    assert form.json()["error"]["param"] == "expand"
    form = httpx.post(
        f"{api_url}/v1/customers",
        headers={"Authorization": f"Basic {basic}"},
        data={"email": "f@example.com", "metadata[a]": "1"},
    )
    assert form.status_code == 200, form.text
    assert form.json()["metadata"] == {"a": "1"}
    as_json = httpx.post(
        f"{api_url}/v1/customers",
        headers={"Authorization": f"Bearer {key}"},
        json={"email": "j@example.com", "address": {"city": "Oslo"}},
    )
    assert as_json.status_code == 200
    assert as_json.json()["address"]["city"] == "Oslo"
    bad_json = httpx.post(
        f"{api_url}/v1/customers",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        content=b"{nope",
    )
    assert bad_json.status_code == 400


def test_numeric_parameter_names_are_unknown_parameters(api_url, key):
    r = httpx.post(
        f"{api_url}/v1/customers", headers={"Authorization": f"Bearer {key}"}, data={"0": "x"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "0"


def test_idempotency_key_too_long_is_rejected(api_url, key):
    r = httpx.post(
        f"{api_url}/v1/customers",
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "k" * 256},
        data={"email": "x@example.com"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "Idempotency-Key"


def test_health_ready_metrics_openapi(api_url):
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api_url}/readyz").json() == {"status": "ready"}
    metrics = httpx.get(f"{api_url}/metrics").text
    assert "kassa_http_requests_total" in metrics
    spec = httpx.get(f"{api_url}/openapi.json").json()
    create = spec["paths"]["/v1/customers"]["post"]
    assert "application/x-www-form-urlencoded" in create["requestBody"]["content"]
    assert create["responses"]["400"]["content"]["application/json"]["schema"]["required"] == [
        "error"
    ]


async def test_rate_limit_answers_429_with_retry_after(database_url, log_dir, db):
    key = (await new_merchant(db)).key("secret")
    server = start_api(
        database_url, log_dir, {"KASSA_RATE_LIMIT_PER_SECOND": "1", "KASSA_RATE_LIMIT_BURST": "3"}
    )
    try:
        codes = []
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}) as c:
            for _ in range(6):
                r = c.get(f"{server.url}/v1/customers")
                codes.append(r.status_code)
                if r.status_code == 429:
                    assert int(r.headers["retry-after"]) >= 1
                    assert r.json()["error"]["code"] == "rate_limit"
        assert codes[:3] == [200, 200, 200]
        assert 429 in codes[3:]
    finally:
        stop_api(server)
