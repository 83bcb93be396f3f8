"""A command that only reads the store need not import pandas.

DuckDB's Python client, at the first statement with a bound parameter, imports pandas (and with
it numpy) to recognise their types among the parameters: about 0.25 s of a command's start,
since pandas comes installed with airbyte-cdk. Hidden before the first statement, pandas is not
imported and DuckDB binds str, int, Decimal, date, datetime, bool, None and lists of them all
the same (unit_tests/test_dataframes.py), but it then looks for pandas again at each value it
binds: a list of 150 values binds about 3x slower (0.99 against 0.32 ms). So only the console's
short reads hide it (cli/main.py `console`), never the destination or a command that writes in
bulk, and never a library caller: DuckDB remembers what it found for the life of a process.
"""

from __future__ import annotations

import sys

HIDDEN = "pandas"


def skip_dataframe_imports() -> None:
    """Hide pandas from this process, unless something imported it already."""
    if HIDDEN not in sys.modules:
        sys.modules[HIDDEN] = None  # `import pandas` now fails at once; DuckDB takes it as absent
