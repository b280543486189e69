"""Fuzzing as a real client would: schemathesis over the served OpenAPI document.

Every operation gets a few generated requests with a valid admin key; none may be a 5xx and
every documented response must match its schema. Bounded and seeded, so it stays quick.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from api.runtime import Runtime


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_operation_survives_generated_requests(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    app = create_app(runtime)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:

        @settings(
            max_examples=10,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            case.call_and_validate(
                headers=admin_headers,
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            fuzz()
        except Exception as exc:  # collect all, report together
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
