-- Version 4 for PostgreSQL (DuckDB's schema_v4.sql rebuilds the syncs table, which PostgreSQL
-- refuses while views depend on it; PostgreSQL adds columns in place). The same columns at the
-- end of syncs, the same data moved, the same v_syncs. See schema_v4.sql for what they mean.
ALTER TABLE syncs ADD COLUMN first_seen_at TIMESTAMPTZ DEFAULT current_timestamp;
ALTER TABLE syncs ADD COLUMN status_source VARCHAR;
ALTER TABLE syncs ADD COLUMN reported_outcome VARCHAR;
ALTER TABLE syncs ADD COLUMN reported_at TIMESTAMPTZ;

UPDATE syncs s SET status_source = CASE
        WHEN status_code = 404 AND status_text = 'NotFoundAtCodat' THEN 'product'
        WHEN data_pushed IS NULL AND status_code IS NOT NULL AND status_code NOT IN (1000, 1010)
             AND EXISTS (SELECT 1 FROM webhook_events e WHERE e.sync_id = s.sync_id
                         AND e.applied) THEN 'webhook'
        WHEN status_code IS NOT NULL THEN 'codat'
        END,
    first_seen_at = coalesce(initiated_at, updated_at);

UPDATE syncs SET reported_outcome = CASE WHEN status_code = 2000 THEN 'successful'
                                         ELSE 'unsuccessful' END,
    reported_at = updated_at, completed_at = NULL, status_code = NULL, status_text = NULL,
    error_message = NULL
WHERE status_source = 'webhook';

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
