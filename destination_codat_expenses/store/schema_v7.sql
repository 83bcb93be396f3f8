-- Version 7: versions of a transaction, and the kind of each (the Sync for Expenses family).
--
-- `transactions` keeps one row per id: its CURRENT version (content, state, last sync). New:
--   kind      expense | transfer | reimbursable | adjustment (NULL: expense, as before v7)
--   version   1 when created, one more per update sent on top of a completed version (NULL: 1)
-- `transaction_versions` keeps the rest of each id's history:
--   state 'completed' / 'failed'   a version an update superseded, as it ended (archived when
--                                  the next version is sent: it never changes again)
--   state 'held'                   content that came while the id's last push was not final;
--                                  sent as the next version once it is (one per id: a newer
--                                  change replaces it), then removed
-- Written in SQL that DuckDB 1.5 and PostgreSQL 15 both take: plain types, no defaults on the
-- added columns (DuckDB replays such an ALTER from its WAL; constraints it cannot add).
ALTER TABLE transactions ADD COLUMN kind VARCHAR;
ALTER TABLE transactions ADD COLUMN version INTEGER;

CREATE TABLE IF NOT EXISTS transaction_versions (
    company_id        VARCHAR NOT NULL,
    transaction_id    VARCHAR NOT NULL,
    version           INTEGER NOT NULL,
    kind              VARCHAR,
    state             VARCHAR NOT NULL,   -- completed | failed | held
    codat_status      VARCHAR,
    message           VARCHAR,
    sync_id           VARCHAR,            -- the sync that carried it (none for a held one)
    source_stream     VARCHAR,
    source_key        VARCHAR,
    payload           VARCHAR,            -- the body, as JSON text (a held one is sent from it)
    payload_hash      VARCHAR,
    issue_date        DATE,
    currency          VARCHAR,
    total_amount      DECIMAL(38, 9),
    recorded_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (company_id, transaction_id, version)
);

CREATE OR REPLACE VIEW v_transactions AS
SELECT company_id, transaction_id, source_stream, source_key, state, codat_status, message,
       last_sync_id, attempts, issue_date, currency, total_amount, updated_at,
       coalesce(kind, 'expense') AS kind, coalesce(version, 1) AS version
FROM transactions;

-- every version of every transaction: the archived and held ones, and the current one
CREATE OR REPLACE VIEW v_transaction_versions AS
SELECT company_id, transaction_id, version, coalesce(kind, 'expense') AS kind, state,
       codat_status, message, sync_id, currency, total_amount, payload_hash,
       recorded_at AS updated_at
FROM transaction_versions
UNION ALL
SELECT company_id, transaction_id, coalesce(version, 1) AS version,
       coalesce(kind, 'expense') AS kind, state, codat_status, message, last_sync_id AS sync_id,
       currency, total_amount, payload_hash, updated_at
FROM transactions;
