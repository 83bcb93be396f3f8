"""A process that never hands DuckDB a DataFrame need not import pandas.

DuckDB's Python client, at the first statement with a bound parameter, imports pandas (and with
it numpy) only to recognise their types among the parameters: about 0.25 s, paid by every
`write` and every CLI command, since pandas comes installed with airbyte-cdk. The connector and
the CLI bind only str, int, Decimal, date, datetime, bool, None and lists of them; hidden before
their first statement, pandas is not imported, and DuckDB binds those all the same
(unit_tests/test_dataframes.py). Only the console scripts do this, never a library caller: DuckDB
remembers what it found, and the report, which does use pandas, runs in a process of its own.
"""

from __future__ import annotations

import sys

HIDDEN = "pandas"


def skip_dataframe_imports() -> None:
    """Hide pandas from this process, unless something imported it already."""
    if HIDDEN not in sys.modules:
        sys.modules[HIDDEN] = None  # `import pandas` now fails at once; DuckDB takes it as absent
