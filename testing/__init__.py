"""Support shared by the tests, the benchmarks and the scripts: the report's seeded stores
(`report_seed`), headless Chromium (`browser`), the sandbox as its own process with its admin API
(`sandbox`), read-only looks at a status store (`store`), a throwaway PostgreSQL cluster
(`postgres`) and polling with a deadline (`polling`).

Not part of the connector: the wheel ships only the product's packages (pyproject's
`[tool.hatch.build.targets.wheel]`). It imports only the product, the sandbox and dev
dependencies, never `integration_tests` or `unit_tests`; unit_tests/test_test_support_layout.py
holds every importer to that.
"""
