"""The optional parts of the install: the report and the sandbox are extras, so a connector image
carries neither Streamlit nor the sandbox's packages (pyproject.toml, docs/deploy.md).

A command that needs an extra checks for it before it starts, and says which extra to install
instead of ending on an ImportError's traceback."""

from __future__ import annotations

import importlib.util

from destination_codat_expenses.errors import CodatExpensesError

PACKAGE = "destination-codat-expenses"
# the modules each extra brings that the base install lacks (import names, not package names)
EXTRA_MODULES = {
    "report": ("streamlit",),
    "sandbox": ("python_multipart", "standardwebhooks", "yaml"),
}


class MissingExtra(CodatExpensesError):
    """A command needs an extra that is not installed."""


def missing_modules(extra: str) -> list[str]:
    return [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]


def require_extras(command: str, *extras: str) -> None:
    """Raise MissingExtra naming the extras `command` needs and this install lacks."""
    lacking = [extra for extra in extras if missing_modules(extra)]
    if lacking:
        wanted = ",".join(lacking)
        raise MissingExtra(
            f"`codat-expenses {command}` needs the [{wanted}] extra, which this install "
            f"lacks: pip install '{PACKAGE}[{wanted}]' (from a checkout: uv sync --extra "
            f"{' --extra '.join(lacking)})."
        )
