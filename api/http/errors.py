"""The domain's errors as HTTP errors, in one place, so every route answers a refusal alike.

The domain says what went wrong in its own words and the client gets them as `detail`; only
the status is decided here: not found 404, a refused promotion 409, anything invalid 422 (a
publish refused by validation carries every finding).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from litestar.exceptions import HTTPException, NotFoundException

from offers.ledger import PublishRefused
from offers.ledger.message_versions import BookRefused
from segmentation.registry import PromotionRefused, RegistryError

__all__ = ["domain_errors", "unprocessable"]


def unprocessable(detail: str, **extra: Any) -> HTTPException:
    """A 422 whose `detail` names what is wrong; `extra` only when there is any."""
    return HTTPException(status_code=422, detail=detail, extra=extra or None)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Wrap the domain calls of a handler: their errors leave as HTTP errors.

    Lookups that miss (an unknown table, version, key) are 404; a promotion that would strand
    a rule is 409; bad values, tables and registry states are 422.
    """
    try:
        yield
    except LookupError as exc:
        raise NotFoundException(str(exc)) from exc
    except PromotionRefused as exc:
        raise HTTPException(detail=str(exc), status_code=409) from exc
    except (PublishRefused, BookRefused) as exc:
        findings = [msgspec.to_builtins(f) for f in exc.findings]
        raise unprocessable(str(exc), findings=findings) from exc
    except (ValueError, RegistryError) as exc:
        raise unprocessable(str(exc)) from exc
