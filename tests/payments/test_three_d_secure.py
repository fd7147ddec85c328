"""3-D Secure through the stripe SDK: ``requires_action`` with a redirect to the challenge,
the shopper authenticates (or fails), Kassa finishes the payment and sends the shopper on to
the merchant's ``return_url``."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

RETURN_URL = "https://shop.example/checkout/done"


def _shopper(challenge_url: str, action: str) -> httpx.Response:
    """Play the shopper's browser: the challenge page, the answer, then Kassa's return page."""
    with httpx.Client(timeout=10.0, trust_env=False) as browser:
        assert browser.get(challenge_url).status_code == 200
        answer = browser.post(challenge_url, data={"action": action})
        assert answer.status_code == 303, answer.text
        return browser.get(answer.headers["location"])


@pytest.mark.parametrize("connector_currency", ["eur", "nzd"], ids=["acquirer_a", "acquirer_b"])
@pytest.mark.parametrize("card", ["pm_card_authenticationRequired"])
def test_challenge_then_success(client, connector_currency, card):
    pi = client.v1.payment_intents.create(
        {
            "amount": 2500,
            "currency": connector_currency,
            "payment_method": card,
            "confirm": True,
            "return_url": RETURN_URL,
        }
    )
    assert pi.status == "requires_action"
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == RETURN_URL
    back = _shopper(pi.next_action.redirect_to_url.url, "authenticate")
    assert back.status_code == 303
    location = back.headers["location"]
    assert location.startswith(RETURN_URL)
    query = dict(parse_qsl(urlsplit(location).query))
    assert (query["payment_intent"], query["redirect_status"]) == (pi.id, "succeeded")
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 2500)
    assert client.v1.charges.retrieve(done.latest_charge).captured is True


def test_failed_challenge_returns_to_requires_payment_method(client):
    pi = client.v1.payment_intents.create(
        {
            "amount": 2500,
            "currency": "eur",
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "return_url": RETURN_URL,
        }
    )
    back = _shopper(pi.next_action.redirect_to_url.url, "fail")
    query = dict(parse_qsl(urlsplit(back.headers["location"]).query))
    assert query["redirect_status"] == "failed"
    after = client.v1.payment_intents.retrieve(pi.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error.code
    # A second return (a reload) changes nothing.
    with httpx.Client(trust_env=False) as browser:
        again = browser.get(back.request.url)
    assert again.status_code == 303
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"
