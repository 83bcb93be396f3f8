"""The webhook receiver, in rooms: signing.py (verify and sign), receiver.py (the Starlette app),
writer.py (group commit), spool.py (events held while the store is busy) and payloads.py (what a
body says). The command that serves it is cli/webhooks.py; the SQL is store/webhook_events.py."""
