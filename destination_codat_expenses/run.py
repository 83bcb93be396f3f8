"""Console entry point `destination-codat-expenses` (spec | check | write)."""

from __future__ import annotations

import sys

from destination_codat_expenses.destination import DestinationCodatExpenses


def run() -> None:
    DestinationCodatExpenses().run(sys.argv[1:])
