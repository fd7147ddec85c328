"""Veriquay ACS (threeds): frictionless and challenge authentications."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from .support import Sandbox, token_payload

T = "threeds"


def create(sb: Sandbox, card: str, amount: int = 500, **extra: object) -> httpx.Response:
    return sb.client(T).post(
        "/v1/authentications",
        json={"card_number": card, "amount": amount, "currency": "EUR", **extra},
        headers={"authorization": f"Bearer {sb.creds(T)['api_key']}"},
    )


def test_frictionless_authentication_returns_a_signed_result(sandbox: Sandbox) -> None:
    r = create(sandbox, "4242424242424242", merchant_reference="fr-1")
    assert r.status_code == 201
    auth = r.json()
    assert (auth["status"], auth["flow"], auth["eci"]) == ("Y", "frictionless", "05")
    assert auth["challenge_url"] is None
    payload = token_payload(auth["result"], sandbox.secret(T))
    assert payload["status"] == "Y"
    assert payload["authentication_id"] == auth["id"]
    assert (payload["amount"], payload["currency"]) == (500, "EUR")
    assert payload["authentication_value"] == auth["authentication_value"]


def test_challenge_authenticate_and_fail_redirect_with_signed_results(sandbox: Sandbox) -> None:
    for action, status, eci in (("authenticate", "Y", "05"), ("fail", "N", "07")):
        auth = create(
            sandbox, "4000002760003184", return_url="https://shop.test/done?cart=9"
        ).json()
        assert (auth["status"], auth["flow"]) == ("C", "challenge")
        page = httpx.get(auth["challenge_url"])
        assert page.headers["content-type"].startswith("text/html")
        assert 'value="authenticate"' in page.text
        assert 'value="fail"' in page.text
        done = httpx.post(auth["challenge_url"], data={"action": action})
        assert done.status_code == 303
        target = urlsplit(done.headers["location"])
        assert (target.scheme, target.netloc, target.path) == ("https", "shop.test", "/done")
        query = parse_qs(target.query)
        assert query["cart"] == ["9"]
        assert query["authentication_id"] == [auth["id"]]
        payload = token_payload(query["threeDSResult"][0], sandbox.secret(T))
        assert (payload["status"], payload["eci"]) == (status, eci)
        shown = (
            sandbox.client(T)
            .get(
                f"/v1/authentications/{auth['id']}",
                headers={"authorization": f"Bearer {sandbox.creds(T)['api_key']}"},
            )
            .json()
        )
        assert shown["status"] == status
        # Submitting again changes nothing: the same result comes back.
        again = httpx.post(auth["challenge_url"], data={"action": "authenticate"})
        assert again.headers["location"] == done.headers["location"]


def test_recurring_and_requested_challenges(sandbox: Sandbox) -> None:
    assert create(sandbox, "4000002500003155", recurring=True).json()["status"] == "Y"
    forced = create(sandbox, "4242424242424242", challenge=True, return_url="https://s.test/")
    assert forced.json()["status"] == "C"


def test_bad_requests(sandbox: Sandbox) -> None:
    assert create(sandbox, "4000002760003184").status_code == 400  # needs a return_url
    assert create(sandbox, "4242424242424241").json()["error"]["code"] == "invalid_card_number"
    assert create(sandbox, "4242424242424242", amount=0).status_code == 400
    no_key = sandbox.client(T).post("/v1/authentications", json={})
    assert no_key.status_code == 401
    assert httpx.get(sandbox.url(T) + "/challenge/3ds_nosuch").status_code == 404
