"""`./run`, the project's entry point: clean help, and a first run that says it
is installing before it goes quiet for a while (issue 18, item 9)."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# Stands in for python3: `-m venv .venv` makes a .venv whose python only says
# what it was asked to run.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin"
    printf '#!/usr/bin/env bash\\necho "ran: $*"\\n' > "$3/bin/python"
    chmod +x "$3/bin/python"
fi
"""


def run_script(folder: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        ["bash", str(folder / "run"), *args],
        env={"PATH": os.environ["PATH"], "PYTHON": str(folder / "fake-python")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The run script with its lock file and a stand-in Python, no .venv yet."""
    shutil.copy(PROJECT / "run", tmp_path / "run")
    (tmp_path / "requirements-dev.lock").write_text("")
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return tmp_path


@pytest.mark.parametrize("args", [[], ["help"], ["--help"]], ids=["none", "help", "-h"])
def test_help_lists_the_commands_and_nothing_of_the_script(
    checkout: Path, args: list[str]
) -> None:
    done = run_script(checkout, *args)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: ./run COMMAND")
    for command in ("serve", "test", "lint", "lock"):
        assert f"\n  {command} " in done.stdout
    assert "set -" not in done.stdout
    assert not (checkout / ".venv").exists()


def test_unknown_command_is_refused_with_the_help(checkout: Path) -> None:
    done = run_script(checkout, "deploy")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("./run: unknown command 'deploy'\nusage:")


def test_first_run_says_it_is_installing_and_later_runs_do_not(
    checkout: Path,
) -> None:
    first = run_script(checkout, "serve", "--port", "9")
    assert first.returncode == 0, first.stderr
    assert "Installing the pinned dependencies into .venv" in first.stderr
    assert first.stdout.splitlines() == [
        "ran: -m pip install --quiet --disable-pip-version-check --require-hashes "
        "-r requirements-dev.lock",
        "ran: server.py serve --port 9",
    ]
    again = run_script(checkout, "serve")
    assert again.stderr == ""
    assert again.stdout == "ran: server.py serve\n"
