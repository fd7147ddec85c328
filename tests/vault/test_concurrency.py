"""Races on a payment method, through the live API: they end consistent, never in a 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import stripe

from tests.vault.conftest import card


def _outcome(call) -> str:
    try:
        call()
    except stripe.InvalidRequestError:
        return "rejected"
    return "ok"


def test_detach_racing_make_default_leaves_no_dangling_default(client):
    cus = client.v1.customers.create({"name": "Racer"})
    outcomes = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(15):
            pm = client.v1.payment_methods.attach(
                client.v1.payment_methods.create(card()).id, {"customer": cus.id}
            )
            detach = pool.submit(_outcome, lambda pm=pm: client.v1.payment_methods.detach(pm.id))
            make_default = pool.submit(
                _outcome,
                lambda pm=pm: client.v1.customers.update(
                    cus.id, {"invoice_settings": {"default_payment_method": pm.id}}
                ),
            )
            outcomes.append((detach.result(), make_default.result()))
            # Whichever committed first, a detached card is not the default afterwards.
            assert (
                client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method is None
            )
    assert all(d == "ok" for d, _ in outcomes)  # the detach always wins; no deadlock, no 500


def test_concurrent_attaches_to_different_customers_pick_one(client):
    pm = client.v1.payment_methods.create(card())
    customers = [client.v1.customers.create({"name": f"c{i}"}).id for i in range(12)]

    def attach(customer_id: str) -> str:
        return _outcome(lambda: client.v1.payment_methods.attach(pm.id, {"customer": customer_id}))

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(attach, customers))
    assert results.count("ok") == 1
    winner = customers[results.index("ok")]
    assert client.v1.payment_methods.retrieve(pm.id).customer == winner
    attached = client.v1.events.list({"type": "payment_method.attached", "limit": 100}).data
    assert [e.data.object.customer for e in attached if e.data.object.id == pm.id] == [winner]
