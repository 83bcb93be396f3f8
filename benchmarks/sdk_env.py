"""The official SDK's own environment: a venv made with uv from PyPI, outside the project's
locked env (the SDK pins its own httpx and pydantic). Made once, then reused from the cache.

    python -m benchmarks.sdk_env   # prints the SDK environment's python
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

SDK_PACKAGE = "codat-sync-for-expenses"
SDK_VERSION = "9.0.0"  # pinned so the figures are comparable run to run
PYTHON = "3.11"


def uv_command() -> list[str]:
    """The first uv that answers: `BENCH_UV` (the Makefile passes its own), `uv` on PATH, the
    base interpreter's `-m uv` (the project's venv does not carry uv, and under `uv run` a bare
    `python3` is the venv's)."""
    candidates = [shlex.split(os.environ["BENCH_UV"])] if os.environ.get("BENCH_UV") else []
    if found := shutil.which("uv"):
        candidates.append([found])
    candidates.append([getattr(sys, "_base_executable", sys.executable), "-m", "uv"])
    for uv in candidates:
        try:
            subprocess.run([*uv, "--version"], capture_output=True, check=True, timeout=60)
            return uv
        except (OSError, subprocess.SubprocessError):
            continue
    raise SystemExit("no uv to make the SDK's environment with: pip install uv")


def venv_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "destination-codat-expenses" / f"bench-sdk-{SDK_VERSION}"


def sdk_python() -> Path:
    """The python of a venv holding the pinned SDK, made on first use."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if python.exists() and has_sdk(python):
        return python
    uv = uv_command()
    print("sdk env: ", shlex.join([*uv, "venv", "--python", PYTHON, str(venv)]))
    subprocess.run([*uv, "venv", "-q", "--python", PYTHON, str(venv)], check=True, timeout=300)
    install = [*uv, "pip", "install", "-q", "--python", str(python)]
    install.append(f"{SDK_PACKAGE}=={SDK_VERSION}")
    print("sdk env: ", shlex.join(install))
    subprocess.run(install, check=True, timeout=600)
    if not has_sdk(python):
        raise SystemExit(f"{SDK_PACKAGE} did not install into {venv}")
    return python


def has_sdk(python: Path) -> bool:
    probe = [str(python), "-c", "import codat_sync_for_expenses"]
    return subprocess.run(probe, capture_output=True, timeout=120).returncode == 0


if __name__ == "__main__":
    print(sdk_python())
