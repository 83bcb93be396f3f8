"""source-faker's `products` written to Codat through PyAirbyte, with defaults and mapping rules.

PyAirbyte and this destination pin different DuckDB versions, so each lives in its own virtual
environment: run this with PyAirbyte's Python and point --destination at the destination's
executable (`make example` builds both with uv, starts a sandbox, runs this and checks the books).

    python examples/pyairbyte_faker.py --destination dest/bin/destination-codat-expenses \
        --base-url http://127.0.0.1:8765 --store status.duckdb

write_strategy="append": PyAirbyte's default ("auto") asks for overwrite on a stream without a
primary key, which the destination refuses, since expenses in the books cannot be deleted.
Appending is safe to repeat: each product id maps to one transaction id, pushed once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import airbyte as ab

HERE = Path(__file__).resolve().parent
DEMO_XERO = "11111111-1111-4111-8111-111111111111"  # the sandbox's demo Xero company


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destination", required=True, help="destination-codat-expenses path")
    parser.add_argument(
        "--source",
        help="a source-faker executable (pip install airbyte-source-faker); by default "
        "PyAirbyte installs it from its connector registry",
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8765")
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument("--company-id", default=DEMO_XERO)
    parser.add_argument("--store", default="codat-expenses-status.duckdb")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    mapping = json.loads((HERE / "faker_products.json").read_text())
    config = {
        "api_key": args.api_key,
        "base_url": args.base_url,
        "company_id": args.company_id,
        "status_store_path": str(Path(args.store).resolve()),
        **mapping,
    }
    source = ab.get_source(
        "source-faker", config={"count": 10, "seed": 1}, local_executable=args.source
    )
    source.select_streams(["products"])  # users and purchases carry no amount: not expenses
    destination = ab.get_destination(
        "destination-codat-expenses", config=config, local_executable=args.destination
    )
    destination.write(source, cache=False, write_strategy="append")
    print(f"written; status store: {config['status_store_path']}")


if __name__ == "__main__":
    main()
