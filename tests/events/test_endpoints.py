"""/v1/webhook_endpoints through the stripe SDK: CRUD, the secret shown once and sealed at
rest, validation that names the parameter and changes nothing."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.factories import stripe_client


async def _count(db, merchant_id: str) -> int:
    async with db.connection() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1", merchant_id
        )


async def test_endpoint_lifecycle_and_secret_shown_once(db, api_url, merchant):
    client = stripe_client(api_url, merchant.key("secret"))
    created = client.v1.webhook_endpoints.create(
        {
            "url": "https://example.com/hooks",
            "enabled_events": ["charge.succeeded", "payment_intent.succeeded"],
            "description": "orders",
            "metadata": {"team": "payments"},
        },
        {"idempotency_key": f"we-{merchant.merchant['id']}"},
    )
    assert created.object == "webhook_endpoint"
    assert created.id.startswith("we_")
    assert created.secret.startswith("whsec_")
    assert created.status == "enabled"
    assert created.enabled_events == ["charge.succeeded", "payment_intent.succeeded"]
    assert (created.livemode, created.metadata.team) == (False, "payments")

    fetched = client.v1.webhook_endpoints.retrieve(created.id)
    assert "secret" not in fetched
    assert fetched.url == "https://example.com/hooks"
    # The secret is sealed, and the stored idempotent response leaves it out.
    async with db.connection() as conn:
        dump = await conn.fetchval(
            "SELECT string_agg(t::text, ',') FROM webhook_endpoints t WHERE merchant_id = $1",
            merchant.merchant["id"],
        )
        stored = await conn.fetchval(
            "SELECT string_agg(k::text, ',') FROM idempotency_keys k WHERE merchant_id = $1",
            merchant.merchant["id"],
        )
    assert created.secret not in dump
    assert created.secret not in stored

    updated = client.v1.webhook_endpoints.update(
        created.id,
        {"enabled_events": ["*"], "disabled": True, "metadata": {"team": ""}, "description": ""},
    )
    assert (updated.status, updated.enabled_events) == ("disabled", ["*"])
    assert updated.description is None
    assert updated.metadata.to_dict() == {}
    assert client.v1.webhook_endpoints.update(created.id, {"disabled": False}).status == "enabled"

    second = client.v1.webhook_endpoints.create(
        {"url": "http://localhost:9/x", "enabled_events": ["*"]}
    )
    listed = client.v1.webhook_endpoints.list({"limit": 1})
    assert [e.id for e in listed.data] == [second.id]
    assert listed.has_more
    deleted = client.v1.webhook_endpoints.delete(second.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.webhook_endpoints.retrieve(second.id)
    assert err.value.http_status == 404
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [created.id]

    other = stripe_client(api_url, merchant.key("secret", livemode=True))
    with pytest.raises(stripe.InvalidRequestError):
        other.v1.webhook_endpoints.retrieve(created.id)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"url": "https://example.com", "enabled_events": ["charge.exploded"]}, "enabled_events"),
        ({"url": "https://example.com", "enabled_events": ["*", "charge.succeeded"]}, None),
        ({"url": "ftp://example.com", "enabled_events": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com", "enabled_events": ["*"]}, "url"),
        ({"url": "https://example.com"}, "enabled_events"),
        ({"url": "https://example.com", "enabled_events": ["*"], "colour": "red"}, "colour"),
        ({"url": "https://example.com", "enabled_events": ["*"], "api_version": "x"}, None),
    ],
)
async def test_bad_input_is_a_400_naming_the_param(db, api_url, merchant, params, param):
    client = stripe_client(api_url, merchant.key("secret"))
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.webhook_endpoints.create(params)
    assert err.value.http_status == 400
    assert err.value.param == (param or err.value.param)
    assert err.value.param
    assert await _count(db, merchant.merchant["id"]) == 0


async def test_live_mode_rejects_private_addresses_test_mode_allows_localhost(
    db, api_url, merchant
):
    live = stripe_client(api_url, merchant.key("secret", livemode=True))
    for url in ("http://127.0.0.1:8080/x", "http://10.0.0.5/x", "http://169.254.169.254/"):
        with pytest.raises(stripe.InvalidRequestError) as err:
            live.v1.webhook_endpoints.create({"url": url, "enabled_events": ["*"]})
        assert err.value.param == "url"
    test = stripe_client(api_url, merchant.key("secret"))
    assert test.v1.webhook_endpoints.create(
        {"url": "http://127.0.0.1:8080/x", "enabled_events": ["*"]}
    ).url.startswith("http://127.0.0.1")
    with pytest.raises(stripe.InvalidRequestError):
        test.v1.webhook_endpoints.create(
            {"url": "http://169.254.169.254/", "enabled_events": ["*"]}
        )


async def test_rotation_and_log_routes_validate_and_404(db, api_url, merchant):
    key = merchant.key("secret")
    client = stripe_client(api_url, key)
    we = client.v1.webhook_endpoints.create({"url": "https://example.com", "enabled_events": ["*"]})
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api_url, headers=auth) as http:
        bad = http.post(f"/v1/webhook_endpoints/{we.id}/rotate_secret", data={"expires_in": "-1"})
        assert (bad.status_code, bad.json()["error"]["param"]) == (400, "expires_in")
        bad = http.get(f"/v1/webhook_endpoints/{we.id}/deliveries", params={"status": "lost"})
        assert (bad.status_code, bad.json()["error"]["param"]) == (400, "status")
        missing = http.get("/v1/webhook_endpoints/we_nope/delivery_attempts")
        assert missing.status_code == 404
        missing = http.post("/v1/events/evt_nope/retry")
        assert missing.status_code == 404
        rotated = http.post(f"/v1/webhook_endpoints/{we.id}/rotate_secret", data={"expires_in": 0})
        assert rotated.status_code == 200
        assert rotated.json()["secret"].startswith("whsec_")
        assert rotated.json()["secret"] != we.secret
