"""The `codat-expenses` command line, in rooms: main.py (the parser and the entry point), env.py
(every environment variable and exit code), sandbox.py, ops.py (status refresh, retry, syncs),
report.py, webhooks.py and demo.py (one command each)."""
