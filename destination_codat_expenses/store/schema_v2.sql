-- Version 2: a record's receipt waits in the ledger (not in memory) until its transaction
-- completes and the receipt is uploaded; it is cleared once the upload is recorded.
ALTER TABLE transactions ADD COLUMN receipt JSON;
