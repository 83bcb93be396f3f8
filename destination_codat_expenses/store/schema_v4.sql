-- Version 4: the store says where each fact about a sync came from, and every sync has a time.
--
-- A webhook no longer sets a sync's status: it marks the sync "to confirm" and its own word is
-- kept apart (reported_outcome, reported_at); the status code, texts and items are read from
-- Codat's API (by the receiver when it has a key, the running destination, or `status refresh`).
--   status_source  'codat'    status_code and the texts were read from Codat's API
--                  'webhook'  a webhook reported the sync ended; not yet confirmed with Codat
--                  'product'  this tool's not-found-at-Codat marker (404)
--                  NULL       nothing read yet (just pushed)
--   first_seen_at  when this store first heard of the sync (a webhook-only sync has no start)
ALTER TABLE syncs ADD COLUMN first_seen_at TIMESTAMPTZ;
ALTER TABLE syncs ADD COLUMN status_source VARCHAR;
ALTER TABLE syncs ADD COLUMN reported_outcome VARCHAR;   -- successful | unsuccessful
ALTER TABLE syncs ADD COLUMN reported_at TIMESTAMPTZ;
-- the default is set after the columns exist: DuckDB 1.5 fails the commit of a transaction that
-- adds a column with a non-constant default and then alters the table again
ALTER TABLE syncs ALTER COLUMN first_seen_at SET DEFAULT current_timestamp;

UPDATE syncs SET first_seen_at = coalesce(initiated_at, updated_at);

-- Before v4 a webhook wrote an inferred code (2000, 5000, 5120, 5130) with data_pushed NULL: that
-- was never Codat's word, so it becomes the webhook's report and the sync is to be confirmed.
UPDATE syncs SET
    status_source = CASE
        WHEN status_code = 404 AND status_text = 'NotFoundAtCodat' THEN 'product'
        WHEN data_pushed IS NULL AND status_code IS NOT NULL AND status_code NOT IN (1000, 1010)
             AND EXISTS (SELECT 1 FROM webhook_events e WHERE e.sync_id = syncs.sync_id
                         AND e.applied) THEN 'webhook'
        WHEN status_code IS NOT NULL THEN 'codat'
        END;
UPDATE syncs SET
    reported_outcome = CASE WHEN status_code = 2000 THEN 'successful' ELSE 'unsuccessful' END,
    reported_at = updated_at,
    status_code = NULL, status_text = NULL, error_message = NULL, completed_at = NULL
WHERE status_source = 'webhook';

-- initiated_at: the start Codat or the destination gave, else when the store first saw the sync
-- (start_known says which), so a sync only a webhook named is counted, charted and found too.
CREATE OR REPLACE VIEW v_syncs AS
SELECT sync_id, company_id, run_id, retry_of, flow,
       coalesce(initiated_at, first_seen_at) AS initiated_at, completed_at, status_code,
       status_text, error_message, exception_message, data_pushed, source_platform,
       target_platform, expenses_from, expenses_to, item_count, failed_count, config_snapshot,
       CASE WHEN status_source = 'webhook' THEN 'unconfirmed'
            WHEN status_code IN (2000, 2040) THEN 'succeeded'
            WHEN status_code IS NULL OR status_code IN (1000, 1010) THEN 'in progress'
            ELSE 'failed' END AS outcome,
       initiated_at IS NOT NULL AS start_known, status_source, reported_outcome, reported_at
FROM syncs;
