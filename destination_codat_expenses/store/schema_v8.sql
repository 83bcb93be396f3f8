-- Version 8: the companies this store has pushed for, with the name Codat gives each, so the
-- report shows "Acme Ltd" beside an id. Filled once per company per run from
-- GET /companies/{companyId} (destination_codat_expenses/company_names.py); a company whose name
-- could not be read keeps the name it had (NULL until one is read). The platforms are the
-- expense source and the accounting software its connections named at that time.
-- Plain SQL that DuckDB 1.5 and PostgreSQL 15 both run.
CREATE TABLE IF NOT EXISTS companies (
    company_id        VARCHAR PRIMARY KEY,
    name              VARCHAR,
    source_platform   VARCHAR,
    target_platform   VARCHAR,
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE OR REPLACE VIEW v_companies AS
SELECT company_id, name, source_platform, target_platform, updated_at FROM companies;
