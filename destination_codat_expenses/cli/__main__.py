"""`python -m destination_codat_expenses.cli ...`: the same as the `codat-expenses` script."""

import sys

from destination_codat_expenses.cli.main import main

sys.exit(main())
