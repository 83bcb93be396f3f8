"""`python -m destination_codat_expenses.cli ...`: the same as the `codat-expenses` script."""

from destination_codat_expenses.cli.main import console

console()
