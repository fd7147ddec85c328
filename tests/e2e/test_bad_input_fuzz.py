"""Schemathesis against /openapi.json: no generated request gets a 5xx, and none that is
answered with an error changes any data."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.factories import new_merchant


@pytest.fixture(scope="module")
def fuzz_key(db) -> str:
    loop = asyncio.get_event_loop_policy().get_event_loop()
    return loop.run_until_complete(new_merchant(db)).key("secret")


@pytest.fixture(scope="module")
def api_schema(api_url):
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json")


def _snapshot(dsn: str) -> tuple[object, ...]:
    """A digest of every table a client can write."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            """
            SELECT (SELECT md5(coalesce(string_agg(c::text, ',' ORDER BY id), ''))
                    FROM customers c),
                   (SELECT md5(coalesce(string_agg(k::text, ',' ORDER BY key), ''))
                    FROM idempotency_keys k),
                   (SELECT count(*) FROM merchants), (SELECT count(*) FROM api_keys),
                   (SELECT md5(coalesce(string_agg(w::text, ',' ORDER BY id), ''))
                    FROM webhook_endpoints w),
                   (SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY id), ''))
                    FROM webhook_deliveries d),
                   (SELECT count(*) FROM webhook_delivery_attempts),
                   (SELECT count(*) FROM event_outbox), (SELECT count(*) FROM events)
            """
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_no_5xx_and_errors_change_nothing(api_schema, fuzz_key, database_url):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            before = _snapshot(database_url)
            response = case.call(headers={"Authorization": f"Bearer {fuzz_key}"})
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"
            if response.status_code >= 400:
                assert "error" in response.json()
                changed = _snapshot(database_url) != before
                assert not changed, f"{case.method} {case.formatted_path} changed data"

        check()
