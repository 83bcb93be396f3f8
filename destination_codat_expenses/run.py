"""Console entry point `destination-codat-expenses` (spec | check | write)."""

from __future__ import annotations

import sys

from destination_codat_expenses.destination import DestinationCodatExpenses
from destination_codat_expenses.store.dataframes import skip_dataframe_imports


def run() -> None:
    DestinationCodatExpenses().run(sys.argv[1:])


def main() -> None:
    """The console script: `run`, in a process that never imports pandas (store/dataframes.py)."""
    skip_dataframe_imports()
    run()
