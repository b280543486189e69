"""The shape of the code: business packages stay free of HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["segmentation", "offers"])
def test_domain_packages_never_import_litestar(package: str) -> None:
    """Import every module of the package in a clean interpreter and look at sys.modules."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"import {package}\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    if not m.name.endswith('.env'):\n"  # alembic's env.py runs only under alembic
        "        importlib.import_module(m.name)\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "bad = sorted(top & {'litestar', 'api', 'uvicorn'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "", f"{package} pulls in {result.stdout.strip()}"


def test_api_is_the_only_package_naming_litestar_in_source() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for pkg in ("segmentation", "offers")
        for p in (ROOT / pkg).rglob("*.py")
        if "litestar" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []
