"""``/v1/routing/rules`` through the live API (form-encoded as the SDKs send, and JSON), and
``kassa routing`` as an operator runs it: create, list, retrieve, delete; every bad input is a
Stripe-shaped 400 naming the parameter, and nothing is stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kassa.core.db import Database
from kassa.merchants.service import NewMerchant
from tests.factories import new_merchant


def form(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's bracket encoding: ``split[acquirer_a]=70``, ``currencies[0]=usd``."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            pairs += form(value, name)
        elif isinstance(value, list):
            pairs += form({str(i): v for i, v in enumerate(value)}, name)
        else:
            pairs.append((name, str(value)))
    return pairs


@pytest.fixture
async def merchant(db: Database) -> NewMerchant:
    return await new_merchant(db)


@pytest.fixture
def api(api_url: str, merchant: NewMerchant) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {merchant.key('secret')}"}
    ) as client:
        yield client


def create(api: httpx.Client, params: dict[str, Any], **kw: Any) -> httpx.Response:
    return api.post("/v1/routing/rules", data=dict(form(params)), **kw)


def test_create_list_retrieve_delete(api: httpx.Client, api_url: str, merchant: NewMerchant):
    split = create(
        api,
        {
            "priority": 10,
            "description": "EU visa split",
            "currencies": ["EUR", "usd"],
            "card_brands": ["visa"],
            "card_countries": ["de", "FR"],
            "min_amount": 100,
            "max_amount": 500_000,
            "payment_method_types": ["card"],
            "split": {"acquirer_a": 70, "acquirer_b": 30},
        },
    )
    assert split.status_code == 200, split.text
    rule = split.json()
    assert rule["id"].startswith("rr_")
    assert {k: v for k, v in rule.items() if k not in ("id", "created")} == {
        "object": "routing_rule",
        "livemode": False,
        "priority": 10,
        "description": "EU visa split",
        "currencies": ["eur", "usd"],
        "card_brands": ["visa"],
        "card_countries": ["DE", "FR"],
        "min_amount": 100,
        "max_amount": 500_000,
        "payment_method_types": ["card"],
        "connector": None,
        "connectors": None,
        "split": {"acquirer_a": 70, "acquirer_b": 30},
    }
    ranked = api.post(
        "/v1/routing/rules", json={"priority": 20, "connectors": ["acquirer_b", "acquirer_a"]}
    )
    assert ranked.status_code == 200, ranked.text
    assert ranked.json()["connectors"] == ["acquirer_b", "acquirer_a"]

    listed = api.get("/v1/routing/rules", params={"limit": 1})
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["data"]] == [ranked.json()["id"]]
    assert listed.json()["has_more"] is True
    assert api.get(f"/v1/routing/rules/{rule['id']}").json() == rule

    # Test-mode rules are invisible in live mode.
    live = httpx.get(
        f"{api_url}/v1/routing/rules",
        headers={"Authorization": f"Bearer {merchant.key('secret', livemode=True)}"},
    )
    assert live.json()["data"] == []

    deleted = api.delete(f"/v1/routing/rules/{rule['id']}")
    assert deleted.json() == {"id": rule["id"], "object": "routing_rule", "deleted": True}
    missing = api.get(f"/v1/routing/rules/{rule['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    assert api.delete(f"/v1/routing/rules/{rule['id']}").status_code == 404
    assert [r["id"] for r in api.get("/v1/routing/rules").json()["data"]] == [ranked.json()["id"]]


def test_an_idempotent_retry_creates_one_rule(api: httpx.Client):
    key = {"Idempotency-Key": f"rr-{uuid.uuid4()}"}
    first = create(api, {"priority": 1, "connector": "acquirer_b"}, headers=key)
    again = create(api, {"priority": 1, "connector": "acquirer_b"}, headers=key)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert len(api.get("/v1/routing/rules").json()["data"]) == 1


AB = {"acquirer_a": 50, "acquirer_b": 50}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"connector": "acquirer_a"}, "priority"),
        ({"priority": "soon", "connector": "acquirer_a"}, "priority"),
        ({"priority": -1, "connector": "acquirer_a"}, "priority"),
        ({"priority": 1}, "connector"),
        ({"priority": 1, "connector": "acquirer_z"}, "connector"),
        ({"priority": 1, "connector": "Acquirer A"}, "connector"),
        ({"priority": 1, "connector": "bank"}, "connector"),  # not a card acquirer
        ({"priority": 1, "connector": "acquirer_a", "split": AB}, "split"),
        ({"priority": 1, "split": {"acquirer_a": 70, "acquirer_b": 20}}, "split"),
        ({"priority": 1, "split": {"acquirer_a": 100}}, "split"),
        ({"priority": 1, "split": {"acquirer_a": 70, "acquirer_c": 30}}, "split[acquirer_c]"),
        ({"priority": 1, "split": {"acquirer_a": "most", "acquirer_b": 30}}, "split[acquirer_a]"),
        ({"priority": 1, "split": {"acquirer_a": 0, "acquirer_b": 100}}, "split[acquirer_a]"),
        ({"priority": 1, "connectors": ["acquirer_a", "acquirer_a"]}, "connectors"),
        ({"priority": 1, "connectors": ["acquirer_a"]}, "connectors"),
        ({"priority": 1, "connectors": ["acquirer_a", "nope"]}, "connectors[1]"),
        ({"priority": 1, "currencies": ["usd", "xyz"], "connector": "acquirer_a"}, "currencies[1]"),
        ({"priority": 1, "currencies": ["mxn"], "connector": "acquirer_a"}, "connector"),
        ({"priority": 1, "card_brands": ["amex"], "split": AB}, "split[acquirer_b]"),
        ({"priority": 1, "card_brands": ["visaa"], "connector": "acquirer_a"}, "card_brands[0]"),
        (
            {"priority": 1, "card_countries": ["USA"], "connector": "acquirer_a"},
            "card_countries[0]",
        ),
        ({"priority": 1, "min_amount": -5, "connector": "acquirer_a"}, "min_amount"),
        ({"priority": 1, "min_amount": "1.5", "connector": "acquirer_a"}, "min_amount"),
        (
            {"priority": 1, "min_amount": 900, "max_amount": 100, "connector": "acquirer_a"},
            "max_amount",
        ),
        (
            {"priority": 1, "payment_method_types": ["cheque"], "connector": "acquirer_a"},
            "payment_method_types[0]",
        ),
        ({"priority": 1, "connector": "acquirer_a", "surprise": "x"}, "surprise"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(
    api: httpx.Client, params: dict[str, Any], param: str
) -> None:
    answer = create(api, params)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param), error
    assert error["message"]
    as_json = api.post("/v1/routing/rules", json=params)
    assert (as_json.status_code, as_json.json()["error"]["param"]) == (400, param)
    assert api.get("/v1/routing/rules").json()["data"] == []  # nothing was stored


def test_a_publishable_key_may_not_manage_rules(api_url: str, merchant: NewMerchant) -> None:
    answer = httpx.get(
        f"{api_url}/v1/routing/rules",
        headers={"Authorization": f"Bearer {merchant.key('publishable')}"},
    )
    assert answer.status_code == 403


def kassa(database_url: str, manifest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kassa", "routing", *args],
        env={
            **os.environ,
            "KASSA_DATABASE_URL": database_url,
            "KASSA_SANDBOX_MANIFEST": str(manifest),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli(
    database_url: str, sandbox_manifest: Path, merchant: NewMerchant, api: httpx.Client
) -> None:
    m = merchant.merchant["id"]
    out = kassa(
        database_url, sandbox_manifest, "create", "--merchant", m, "--priority", "5",
        "--currency", "usd", "--split", "acquirer_a=60", "--split", "acquirer_b=40", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    rule = json.loads(out.stdout)
    assert (rule["split"], rule["currencies"]) == ({"acquirer_a": 60, "acquirer_b": 40}, ["usd"])
    assert api.get(f"/v1/routing/rules/{rule['id']}").json() == rule
    bad = kassa(database_url, sandbox_manifest, "create", "--merchant", m, "--priority", "1",
                "--connector", "acquirer_a", "--currency", "mxn")  # fmt: skip
    assert bad.returncode == 2
    assert "does not take payments in MXN" in bad.stdout
    assert "(connector)" in bad.stdout
    listed = kassa(database_url, sandbox_manifest, "list", "--merchant", m, "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [rule["id"]]
    gone = kassa(database_url, sandbox_manifest, "delete", "--merchant", m, rule["id"], "--json")
    assert json.loads(gone.stdout)["deleted"] is True
    assert api.get("/v1/routing/rules").json()["data"] == []


def test_update_changes_priority_conditions_and_action(api: httpx.Client, db: Database):
    rule = create(api, {"priority": 5, "currencies": ["eur"], "connector": "acquirer_a"}).json()
    moved = api.post(f"/v1/routing/rules/{rule['id']}", data={"priority": "1"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["priority"], moved.json()["connector"]) == (1, "acquirer_a")
    assert moved.json()["currencies"] == ["eur"]  # what was not named stays

    # Naming another action replaces the old one.
    split = api.post(
        f"/v1/routing/rules/{rule['id']}",
        data=dict(form({"split": {"acquirer_a": 60, "acquirer_b": 40}})),
    )
    assert split.status_code == 200, split.text
    assert (split.json()["connector"], split.json()["split"]) == (
        None,
        {"acquirer_a": 60, "acquirer_b": 40},
    )
    assert api.get(f"/v1/routing/rules/{rule['id']}").json() == split.json()


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"priority": -1}, "priority"),
        ({"split": {"acquirer_a": 60, "acquirer_b": 30}}, "split"),
        ({"connector": "acquirer_c"}, "connector"),
        ({"connector": "acquirer_a", "split": {"acquirer_a": 50, "acquirer_b": 50}}, "split"),
        ({"min_amount": 900}, "max_amount"),  # the stored max_amount is 500
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_update_is_a_400_naming_the_param_and_changes_nothing(
    api: httpx.Client, params: dict[str, Any], param: str
):
    rule = create(api, {"priority": 5, "max_amount": 500, "connector": "acquirer_a"}).json()
    answer = api.post(f"/v1/routing/rules/{rule['id']}", data=dict(form(params)))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert api.get(f"/v1/routing/rules/{rule['id']}").json() == rule


def test_update_of_a_missing_rule_is_a_404(api: httpx.Client):
    answer = api.post("/v1/routing/rules/rr_missing", data={"priority": "1"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "resource_missing"
