-- Version 6: key lookups that use an index. DuckDB 1.5 uses an ART index for a scan only when
-- the filter is on ONE indexed column: a lookup or an ON CONFLICT on the composite primary keys
-- (company_id, transaction_id) and (sync_id, transaction_id) reads the whole table, so a
-- batch's cost grew with the store. These single-column indexes make a batch's statements
-- O(batch); the statements filter on the indexed column alone (store/status_store.py), and the
-- primary keys still give real uniqueness.
CREATE INDEX IF NOT EXISTS transactions_by_id ON transactions (transaction_id);
CREATE INDEX IF NOT EXISTS push_items_by_sync ON push_items (sync_id);
CREATE INDEX IF NOT EXISTS attempts_by_id ON transaction_attempts (transaction_id);
