"""Fuzzing as a real client would: schemathesis over the served OpenAPI document.

Every operation gets a few generated requests with a valid admin key; then the stateful
phase follows the document's links (an incident created, then read, patched and listed; a
key created, then revoked; a version read, saved as a draft, validated, published). Every
answer must hold to the contract: no 5xx, a documented status, a documented content type, a
body matching its documented schema. Seeded and bounded, so it stays quick.

Generated bodies are not all valid, and need not be: a refusal must be documented too. One
difference from JSON Schema is deliberate: schemathesis may send `60.0` for an integer (the
same number to JSON Schema), which the API refuses as a 422 naming the field, as it does
`"60"`; integers are written as integers.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from offers.ledger.db import create_engine
from offers.ledger.store import Ledger
from segmentation.registry import Registry

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

#: Only the document's own links: schemathesis would otherwise guess more from names.
CONFIG = SchemathesisConfig.from_dict({"phases": {"stateful": {"inference": {"algorithms": []}}}})

QUICK = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _known_customers(case: Any, ids: list[str]) -> None:
    """Customers a generated incident names are made-up ids, so every case would be a 422
    (unknown customers): name real ones instead, so the 2xx answers are checked too."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("customers"), list) and body["customers"]:
        body["customers"] = ids[: len(body["customers"])]
    if isinstance(body, dict) and isinstance(body.get("customer_id"), str):
        body["customer_id"] = ids[0]


def _report(failures: dict[str, str]) -> str:
    return "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_operation_answers_what_its_contract_says(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/schema/openapi.json", create_app(runtime), config=CONFIG
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: dict[str, str] = {}
    ids = runtime.book.frame["customer_id"].head(20).to_list()
    for operation, mode in itertools.product(operations, GenerationMode):
        # valid requests, and requests that break the schema on purpose (each must be a 4xx
        # the document lists)

        @settings(QUICK, max_examples=8)
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            _known_customers(case, ids)
            case.call_and_validate(headers=admin_headers, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group
            failures[f"{operation.label} ({mode.value})"] = str(exc)[:2000]
    assert not failures, _report(failures)


def _fresh(pristine: Path, folder: Path, like: Runtime) -> Runtime:
    """A runtime over a copy of the pristine data folder: database and model registry."""
    shutil.copytree(pristine, folder)
    engine = create_engine(f"sqlite:///{folder / 'makegood.db'}")
    fresh = Runtime(
        settings=Settings(data_dir=folder),
        engine=engine,
        ledger=Ledger(engine),
        model=like.model,
        book=like.book,
        messages=like.messages,
    )
    fresh.reload_table()
    return fresh


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_following_the_links_keeps_to_the_contract(
    runtime: Runtime, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/schema/openapi.json", create_app(runtime), config=CONFIG
    )
    ids = runtime.book.frame["customer_id"].head(20).to_list()
    pristine = tmp_path / "pristine"
    registry = Registry(pristine / "models")  # the served model, so its links lead somewhere
    registry.save(runtime.model)
    registry.promote(runtime.model.card.version)
    runtime.engine.dispose()  # SQLite: the WAL checkpointed into the file, to copy it whole
    shutil.copy(tmp_path / "makegood.db", pristine / "makegood.db")
    scenarios = itertools.count()
    followed: Counter[tuple[str, str, int]] = Counter()

    class Workflow(schema.as_state_machine()):
        """Each scenario starts from the same data, so a replayed one answers alike."""

        def setup(self) -> None:
            self.runtime = _fresh(pristine, tmp_path / f"s{next(scenarios)}", runtime)
            self.app = create_app(self.runtime)

        def teardown(self) -> None:
            self.runtime.close()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": admin_headers, "app": self.app}

        def before_call(self, case: Any) -> None:
            _known_customers(case, ids)

        def step(self, input: Any) -> Any:
            output = super().step(input)
            via = "link" if input.transition is not None else "root"
            followed[via, input.case.operation.label, output.response.status_code] += 1
            return output

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
            )

    Workflow.run(
        settings=settings(QUICK, max_examples=60, stateful_step_count=8, phases=[Phase.generate])
    )
    # the links lead somewhere: what one answer names, the next operation finds
    reached = {label for via, label, status in followed if via == "link" and status < 300}
    assert len(reached) >= 5 and "DELETE /v1/keys/{key_id}" in reached, sorted(followed.items())
