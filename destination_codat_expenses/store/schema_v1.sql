-- Status store, version 1. Money is DECIMAL(38,9); timestamps are UTC (TIMESTAMPTZ).
-- The report reads the v_* views only; tables grow by new columns at the end.

CREATE TABLE IF NOT EXISTS runs (
    run_id            VARCHAR PRIMARY KEY,
    started_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ,
    records_in        BIGINT NOT NULL DEFAULT 0,
    records_accepted  BIGINT NOT NULL DEFAULT 0,
    records_rejected  BIGINT NOT NULL DEFAULT 0,
    checkpoints       BIGINT NOT NULL DEFAULT 0,
    outcome           VARCHAR,            -- running | succeeded | failed
    config_redacted   JSON
);

CREATE TABLE IF NOT EXISTS transactions (
    company_id        VARCHAR NOT NULL,
    transaction_id    VARCHAR NOT NULL,   -- the id sent to Codat (uuid)
    source_stream     VARCHAR,
    source_key        VARCHAR,            -- the record's own id in its stream
    state             VARCHAR NOT NULL,   -- sending | sent | completed | failed
    codat_status      VARCHAR,            -- Pending | Completed | ValidationError | PushError
    message           VARCHAR,
    last_sync_id      VARCHAR,
    attempts          INTEGER NOT NULL DEFAULT 0,
    payload           JSON,
    payload_hash      VARCHAR,
    issue_date        DATE,
    currency          VARCHAR,
    total_amount      DECIMAL(38, 9),
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (company_id, transaction_id)
);

CREATE TABLE IF NOT EXISTS transaction_attempts (
    company_id        VARCHAR NOT NULL,
    transaction_id    VARCHAR NOT NULL,
    sync_id           VARCHAR NOT NULL,
    status            VARCHAR NOT NULL,
    message           VARCHAR,
    recorded_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (company_id, transaction_id, sync_id)
);

CREATE TABLE IF NOT EXISTS datasets (
    dataset_id        VARCHAR PRIMARY KEY,
    company_id        VARCHAR NOT NULL,
    run_id            VARCHAR,
    item_count        INTEGER NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    sync_id           VARCHAR
);

CREATE TABLE IF NOT EXISTS syncs (
    sync_id               VARCHAR PRIMARY KEY,
    company_id            VARCHAR NOT NULL,
    run_id                VARCHAR,
    retry_of              VARCHAR,
    flow                  VARCHAR,          -- direct | datasets
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
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS push_items (
    sync_id           VARCHAR NOT NULL,
    company_id        VARCHAR NOT NULL,
    transaction_id    VARCHAR NOT NULL,
    data_type         VARCHAR,
    record_id         VARCHAR,
    status            VARCHAR NOT NULL,
    message           VARCHAR,
    amount            DECIMAL(38, 9),
    currency          VARCHAR,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sync_id, transaction_id)
);

CREATE TABLE IF NOT EXISTS rejects (
    run_id            VARCHAR NOT NULL,
    stream            VARCHAR,
    record_key        VARCHAR,
    field             VARCHAR,
    reason            VARCHAR NOT NULL,
    rejected_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_events (
    webhook_id        VARCHAR PRIMARY KEY,
    event_type        VARCHAR,
    received_at       TIMESTAMPTZ NOT NULL,
    verified          BOOLEAN NOT NULL,
    applied           BOOLEAN NOT NULL DEFAULT FALSE,
    sync_id           VARCHAR,
    company_id        VARCHAR,
    payload           JSON
);

CREATE TABLE IF NOT EXISTS attachments (
    company_id        VARCHAR NOT NULL,
    transaction_id    VARCHAR NOT NULL,
    sync_id           VARCHAR,
    file_name         VARCHAR NOT NULL,
    size_bytes        BIGINT,
    status            VARCHAR NOT NULL,    -- uploaded | rejected | failed
    message           VARCHAR,
    attachment_id     VARCHAR,
    recorded_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (company_id, transaction_id, file_name)
);

CREATE OR REPLACE VIEW v_syncs AS
SELECT sync_id, company_id, run_id, retry_of, flow, initiated_at, completed_at, status_code,
       status_text, error_message, exception_message, data_pushed, source_platform,
       target_platform, expenses_from, expenses_to, item_count, failed_count, config_snapshot,
       CASE WHEN status_code IN (2000, 2040) THEN 'succeeded'
            WHEN status_code IS NULL OR status_code IN (1000, 1010) THEN 'in progress'
            ELSE 'failed' END AS outcome
FROM syncs;

CREATE OR REPLACE VIEW v_push_items AS
SELECT p.sync_id, p.company_id, p.transaction_id, p.data_type, p.record_id, p.status, p.message,
       p.amount, p.currency, t.source_stream, t.source_key, t.issue_date
FROM push_items p
LEFT JOIN transactions t USING (company_id, transaction_id);

CREATE OR REPLACE VIEW v_transactions AS
SELECT company_id, transaction_id, source_stream, source_key, state, codat_status, message,
       last_sync_id, attempts, issue_date, currency, total_amount, updated_at
FROM transactions;

CREATE OR REPLACE VIEW v_transaction_attempts AS
SELECT company_id, transaction_id, sync_id, status, message, recorded_at
FROM transaction_attempts;

CREATE OR REPLACE VIEW v_rejects AS
SELECT run_id, stream, record_key, field, reason, rejected_at FROM rejects;

CREATE OR REPLACE VIEW v_runs AS
SELECT run_id, started_at, finished_at, records_in, records_accepted, records_rejected,
       checkpoints, outcome FROM runs;

CREATE OR REPLACE VIEW v_webhook_events AS
SELECT webhook_id, event_type, received_at, verified, applied, sync_id, company_id
FROM webhook_events;

CREATE OR REPLACE VIEW v_attachments AS
SELECT company_id, transaction_id, sync_id, file_name, size_bytes, status, message,
       attachment_id, recorded_at FROM attachments;
