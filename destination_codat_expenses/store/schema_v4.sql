-- Version 4: the store says where each fact about a sync came from, and every sync has a time.
--
-- A webhook no longer sets a sync's status: it marks the sync "to confirm" and its own word is
-- kept apart (reported_outcome, reported_at); the status code, texts and items are read from
-- Codat's API (by the receiver when it has a key, the running destination, or `status refresh`).
--   first_seen_at     when this store first heard of the sync (a webhook-only sync has no start)
--   status_source     'codat'    status_code and the texts were read from Codat's API
--                     'webhook'  a webhook reported the sync ended; not yet confirmed with Codat
--                     'product'  this tool's not-found-at-Codat marker (404)
--                     NULL       nothing read yet (just pushed)
--   reported_outcome  successful | unsuccessful: what the sync's webhooks said
--   reported_at       when they said it
--
-- The table is rebuilt rather than altered: DuckDB 1.5 cannot replay a WAL holding an ALTER
-- TABLE that adds a non-constant default (the file would not open again after a crash), and it
-- refuses to commit a transaction that alters a table and then updates it. The columns before
-- first_seen_at are version 1's, in its order; the new ones are at the end.
CREATE TABLE syncs_v4 (
    sync_id               VARCHAR PRIMARY KEY,
    company_id            VARCHAR NOT NULL,
    run_id                VARCHAR,
    retry_of              VARCHAR,
    flow                  VARCHAR,
    initiated_at          TIMESTAMPTZ,
    completed_at          TIMESTAMPTZ,
    status_code           INTEGER,
    status_text           VARCHAR,
    error_message         VARCHAR,
    exception_message     VARCHAR,
    data_pushed           BOOLEAN,
    source_platform       VARCHAR,
    target_platform       VARCHAR,
    expenses_from         DATE,
    expenses_to           DATE,
    item_count            INTEGER,
    failed_count          INTEGER,
    config_snapshot       JSON,
    updated_at            TIMESTAMPTZ NOT NULL,
    first_seen_at         TIMESTAMPTZ DEFAULT current_timestamp,
    status_source         VARCHAR,
    reported_outcome      VARCHAR,
    reported_at           TIMESTAMPTZ
);

-- Before v4 a webhook wrote an inferred code (2000, 5000, 5120, 5130) with data_pushed NULL: that
-- was never Codat's word, so it becomes the webhook's report and the sync is to be confirmed.
INSERT INTO syncs_v4
WITH sourced AS (
    SELECT s.*, CASE
        WHEN status_code = 404 AND status_text = 'NotFoundAtCodat' THEN 'product'
        WHEN data_pushed IS NULL AND status_code IS NOT NULL AND status_code NOT IN (1000, 1010)
             AND EXISTS (SELECT 1 FROM webhook_events e WHERE e.sync_id = s.sync_id
                         AND e.applied) THEN 'webhook'
        WHEN status_code IS NOT NULL THEN 'codat'
        END AS source
    FROM syncs s
)
SELECT sync_id, company_id, run_id, retry_of, flow, initiated_at,
       CASE WHEN source = 'webhook' THEN NULL ELSE completed_at END,
       CASE WHEN source = 'webhook' THEN NULL ELSE status_code END,
       CASE WHEN source = 'webhook' THEN NULL ELSE status_text END,
       CASE WHEN source = 'webhook' THEN NULL ELSE error_message END,
       exception_message, data_pushed, source_platform, target_platform, expenses_from,
       expenses_to, item_count, failed_count, config_snapshot, updated_at,
       coalesce(initiated_at, updated_at), source,
       CASE WHEN source = 'webhook' THEN
            CASE WHEN status_code = 2000 THEN 'successful' ELSE 'unsuccessful' END END,
       CASE WHEN source = 'webhook' THEN updated_at END
FROM sourced;

DROP TABLE syncs;
ALTER TABLE syncs_v4 RENAME TO syncs;

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
