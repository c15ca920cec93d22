-- Repère sync server, schema 7: retention rules (issue 10, point 6).

-- How long an organisation keeps a young person's file after the last contact, in months.
-- No row: the CNIL default of the référentiel « accompagnement social », 24 months.
CREATE TABLE retention_rules (
    organisation_id  BLOB PRIMARY KEY REFERENCES organisations (id),
    months           INTEGER NOT NULL CHECK (months BETWEEN 1 AND 120),
    updated_at       INTEGER NOT NULL
);
