from __future__ import annotations

from tests.factories import new_merchant, stripe_client


async def test_create_and_retrieve_customer(db, api_url):
    m = await new_merchant(db)
    client = stripe_client(api_url, m.key("secret"))
    cus = client.v1.customers.create({"email": "a@example.com", "name": "Ada"})
    got = client.v1.customers.retrieve(cus.id)
    assert got.email == "a@example.com"
    assert got.name == "Ada"
