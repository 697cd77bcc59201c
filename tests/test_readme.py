"""The README's recipes work as written: production on one machine from a fresh
home folder, the operations of the frontend snippet fit the schema, and the
SQLite backup copies a live database (issue 18, items 2, 8 and 10)."""

import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import graphql
from starlette.testclient import TestClient

from app import create_app
from models.db import close_database
from settings import Settings
from tests.conftest import PASSWORD, Api, make_environ

PROJECT = Path(__file__).resolve().parent.parent
README = (PROJECT / "README.md").read_text()


def section(heading: str) -> str:
    start = README.index(f"{heading}\n")
    end = README.find("\n#", start + len(heading))
    return README[start:end]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def test_production_recipe_on_one_machine_starts_from_a_fresh_home(
    tmp_path: Path,
) -> None:
    once, start = code_blocks(section("### Production on one machine"), "sh")
    *setup, serve = start.strip().splitlines()
    assert serve.startswith(".venv/bin/python server.py --host 0.0.0.0")
    # Everything but the server itself, whose settings `tenant list` reads too.
    script = "\n".join([once, once, *setup, ".venv/bin/python server.py tenant list"])
    done = subprocess.run(
        [
            "bash",
            "-euo",
            "pipefail",
            "-c",
            script.replace(".venv/bin/python", sys.executable),
        ],
        cwd=PROJECT,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "USER_SERVICE_ADMIN_PASSWORD": PASSWORD,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "error:" not in done.stderr
    assert done.stdout.splitlines()[-1].startswith("acme ")
    folder = tmp_path / "user-service"
    assert {"data-key", "users.db"} <= {p.name for p in folder.iterdir()}
    assert stat.S_IMODE((folder / "data-key").stat().st_mode) == 0o600


def test_operations_of_the_frontend_snippet_fit_the_schema() -> None:
    schema = graphql.build_schema((PROJECT / "schema.graphql").read_text())
    config, client = code_blocks(section("## Calling it from your app"), "ts")
    assert 'plugins: ["typescript-operations"]' in config
    assert 'scalars: { DateTime: "string" }' in config
    documents = re.findall(r"/\* GraphQL \*/ `(.*?)`", client, re.DOTALL)
    assert len(documents) == 3
    for document in documents:
        assert graphql.validate(schema, graphql.parse(document)) == [], document


def test_changelog_starts_at_the_version_of_pyproject() -> None:
    changelog = (PROJECT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## (\d+\.\d+\.\d+)\b", changelog, re.MULTILINE)
    project = (PROJECT / "pyproject.toml").read_text()
    [version] = re.findall(r'^version = "(.*)"$', project, re.MULTILINE)
    assert versions[0] == version


def test_license_is_the_one_pyproject_names() -> None:
    project = (PROJECT / "pyproject.toml").read_text()
    assert 'license = "MIT"' in project
    assert (PROJECT / "LICENSE").read_text().startswith("MIT License\n")


def test_sqlite_backup_recipe_copies_a_live_database(tmp_path: Path) -> None:
    [backup] = code_blocks(section("## Backup and restore"), "sh")
    environ = make_environ(
        tmp_path, USER_SERVICE_DATABASE_URL=f"sqlite:///{tmp_path}/users.db"
    )
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        Api(client, settings.dev_api_key, settings).sign_up("ann@x.io").ok()
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", backup],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "USER_SERVICE_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    close_database()
    assert done.returncode == 0, done.stderr
    [copy] = (tmp_path / "backups").iterdir()
    with sqlite3.connect(copy) as connection:
        emails = connection.execute('SELECT email FROM "user"').fetchall()
    assert emails == [("ann@x.io",)]
