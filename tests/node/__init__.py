"""Node.js for the tests that check the service against outside implementations.

Packages are pinned and installed once into a cache folder outside the
checkout; without Node the tests skip (fail on CI, which has it).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import service_missing

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
NODE_CACHE = CACHE / "user-service-tests" / "node"
SCRIPTS = Path(__file__).resolve().parent
INSTALL_SECONDS = 300


def node_packages(*packages: str) -> Path:
    """A folder whose node_modules holds `packages` ("name@version" each)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        service_missing("Node.js and npm are not installed")
    folder = NODE_CACHE / "-".join(sorted(packages)).replace("/", "_")
    marker = folder / "installed.json"
    if marker.exists() and json.loads(marker.read_text()) == sorted(packages):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private": true, "type": "module"}\n')
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--save-exact", *packages],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        service_missing(f"npm could not install {packages}: {done.stderr[-500:]}")
    marker.write_text(json.dumps(sorted(packages)))
    return folder


def run_node(
    folder: Path, script: str, *args: str, timeout: float = 60
) -> "subprocess.CompletedProcess[str]":
    """Run one of this folder's scripts with `folder`'s packages."""
    return subprocess.run(
        ["node", str(SCRIPTS / script), *args],
        cwd=folder,
        env={**os.environ, "NODE_PATH": str(folder / "node_modules")},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
