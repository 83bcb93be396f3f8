"""Every environment variable the tools read and every exit code they give, defined once.

Secrets come only from the environment, never from a flag: flags land in shell history and in
process lists. docs/cli.md lists each name and code (unit_tests/test_cli_parts.py checks it).
The report (report_app) reads its names from here too.
"""

from __future__ import annotations

# -- environment variables ---------------------------------------------------------------------
KEY_ENV = "CODAT_API_KEY"  # Codat's API key: status refresh, retry, the report, the receiver
URL_ENV = "CODAT_BASE_URL"  # Codat's address, when --base-url is not given
DEFAULT_BASE_URL = "https://api.codat.io"
WEBHOOK_SECRET_ENV = "CODAT_WEBHOOK_SECRET"  # noqa: S105 (a name) the receiver's signing secret
SANDBOX_KEY_ENV = "CODAT_SANDBOX_API_KEY"  # the key the sandbox asks of clients
STORE_ENV = "CODAT_EXPENSES_STORE"  # the store `codat-expenses report` hands to the report app
DEMO_SERVE_ENV = "DEMO_SERVE"  # 0/false/no: the demo stops after its summary
LOG_FORMAT_ENV = "CODAT_EXPENSES_LOG_FORMAT"  # json: one JSON object per log line (cli/logs.py)
OPERATOR_TOKEN_ENV = "CODAT_EXPENSES_OPERATOR_TOKEN"  # noqa: S105 (a name) the report's sign-in

# -- exit codes --------------------------------------------------------------------------------
EXIT_OK = 0
EXIT_NOT_ALL_DONE = 1  # some of what was asked could not be done (a retry's sync did not
# succeed, say); each one is named on stderr
EXIT_REFUSED = 2  # nothing was done: a setting, an argument, or Codat stopped the command
EXIT_STILL_RUNNING = 3  # retry pushed, but a new sync had not ended when the wait ran out
EXIT_NO_SYNC = 4  # `syncs latest` / `syncs last-successful`: Codat has no such sync (404)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
ERROR_PREFIX = "codat-expenses: "  # starts the one stderr line that says why (EXIT_REFUSED)
