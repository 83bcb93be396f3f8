-- Version 3: why a run failed. Every run that ends records its outcome, and a failed one says
-- why in words without secrets (the error's message); NULL for runs that succeeded.
ALTER TABLE runs ADD COLUMN error VARCHAR;

CREATE OR REPLACE VIEW v_runs AS
SELECT run_id, started_at, finished_at, records_in, records_accepted, records_rejected,
       checkpoints, outcome, error FROM runs;
