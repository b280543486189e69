"""Run a page of the docs as a new user would: every `$ ` command of its console blocks, in
order, in a fresh folder, each output line the page shows checked against what was printed.

A shown line matches a printed one where they agree character for character, except that
`…` stands for anything and dates, times and perk codes (which change every run) match any
date, time or code. A plain `makegood …` command runs in this process through click's
runner (as `makegood` would, without starting Python again); anything else (a heredoc, a
pipe) runs in bash with the checkout's `makegood` first on PATH.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from api.cli import cli

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
_HEREDOC = re.compile(r"<<-?'?(\w+)'?")
_VOLATILE = (
    (re.escape("…"), ".*"),
    (r"\d{4}\\-\d{2}\\-\d{2}", r"\\d{4}-\\d{2}-\\d{2}"),
    (r"\d{2}:\d{2}:\d{2}", r"\\d{2}:\\d{2}:\\d{2}"),
    (r"\b[A-Z0-9]{8}\b", r"[A-Z0-9]{8}"),
)


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)


def steps(markdown: str) -> Iterator[Step]:
    """The commands of every console block, each with the output lines shown after it."""
    for block in _BLOCK.findall(markdown):
        lines = block.splitlines()
        i = 0
        current: Step | None = None
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                if current is not None:
                    yield current
                command = [line[2:]]
                end = _HEREDOC.search(line)
                while command[-1].endswith("\\") or end is not None:
                    i += 1
                    command.append(lines[i])
                    if end is not None and lines[i].strip() == end[1]:
                        break
                current = Step("\n".join(command))
            elif current is not None and line.strip():
                current.shown.append(line)
            i += 1
        if current is not None:
            yield current


def pattern(shown: str) -> re.Pattern[str]:
    """A shown output line as a pattern over a printed one (see the module docstring)."""
    text = re.escape(shown.strip())
    for volatile, wildcard in _VOLATILE:
        text = re.sub(volatile, wildcard, text)
    return re.compile(text)


def check(step: Step, printed: str) -> list[str]:
    """Shown lines not found, in order, among the printed ones."""
    lines = [line.strip() for line in printed.splitlines()]
    at, missing = 0, []
    for shown in step.shown:
        wanted = pattern(shown)
        found = next((j for j in range(at, len(lines)) if wanted.fullmatch(lines[j])), None)
        if found is None:
            missing.append(shown)
        else:
            at = found + 1
    return missing


_SHELL = re.compile(r"[|&;<>$`*?~]|\\\n")


def _run(command: str, folder: Path, environment: dict[str, str]) -> tuple[int, str]:
    """(exit code, what it printed, standard error in between as a terminal shows it)."""
    if command.startswith("makegood ") and not _SHELL.search(command):
        with contextlib.chdir(folder):
            done = CliRunner().invoke(
                cli, shlex.split(command)[1:], env=environment, terminal_width=80
            )
        return done.exit_code, done.output
    ran = subprocess.run(command, shell=True, cwd=folder, env=environment,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         executable="/bin/bash")  # fmt: skip
    return ran.returncode, ran.stdout


def run_page(
    page: Path,
    folder: Path,
    setup: tuple[str, ...] = (),
    after: dict[str, Callable[[Path], None]] | None = None,
    skip: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    stop: str | None = None,
) -> list[str]:
    """Run `page` in `folder` (after the `setup` commands); `after[prefix]` edits files once
    a command starting with prefix ran, as the page tells the reader to; commands starting
    with a `skip` prefix are not run, nor any from the one starting with `stop` on.
    Returns every problem found, empty when it all works."""
    bin_dir = Path(sys.executable).parent
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "80",
        "TERM": "dumb",
        **(env or {}),
    }
    environment.pop("MAKEGOOD_DATABASE_URL", None)
    problems = []
    for command in setup:
        code, printed = _run(command, folder, environment)
        if code:
            return [f"setup {command!r} failed: {printed[-2000:]}"]
    for step in steps(page.read_text(encoding="utf-8")):
        if stop is not None and step.command.startswith(stop):
            break
        if step.command.startswith(skip):
            continue
        code, printed = _run(step.command, folder, environment)
        refused = any(s.startswith("Error:") for s in step.shown)
        if bool(code) != refused and not step.command.startswith("makegood offers validate"):
            problems.append(f"$ {step.command}\n  exit {code}:\n{printed[-3000:]}")
            continue
        missing = check(step, printed)
        if missing:
            problems.append(
                f"$ {step.command}\n  not printed:\n    "
                + "\n    ".join(missing)
                + f"\n  printed:\n{printed[-3000:]}"
            )
        for prefix, edit in (after or {}).items():
            if step.command.startswith(prefix):
                edit(folder)
    return problems
