"""The webhook receiver, in rooms: signing.py (verify and sign), receiver.py (the Starlette app),
writer.py (group commit), spool.py (events held while the store is busy), payloads.py (what a
body says) and confirmer.py (reading the syncs webhooks report from Codat, given a key). The
command that serves it is cli/webhooks.py; the SQL is store/webhook_events.py."""

# here, not in receiver.py: the CLI's help names it without importing Starlette
WEBHOOK_PATH = "/webhooks/codat"
