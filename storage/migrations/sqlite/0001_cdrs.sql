-- CDRs with CGRateS's fields; one row per (CGRID, RunID).
-- Times and usage are integer nanoseconds (UTC, since the unix epoch):
-- captures have nanosecond stamps and a CDR reads back exactly as written.
-- Money is never REAL: `cost` is the exact decimal text and `cost_key` an
-- order-preserving text encoding of it, which MinCost/MaxCost compare.
CREATE TABLE cdrs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cgrid TEXT NOT NULL,
    run_id TEXT NOT NULL,
    origin_host TEXT NOT NULL,
    source TEXT NOT NULL,
    origin_id TEXT NOT NULL,
    tor TEXT NOT NULL,
    request_type TEXT NOT NULL,
    tenant TEXT NOT NULL,
    category TEXT NOT NULL,
    account TEXT NOT NULL,
    subject TEXT NOT NULL,
    destination TEXT NOT NULL,
    setup_time INTEGER NOT NULL,
    answer_time INTEGER,
    usage INTEGER NOT NULL,
    cost TEXT,
    cost_key TEXT,
    cost_source TEXT NOT NULL,
    extra_fields TEXT NOT NULL,
    disconnect_cause TEXT NOT NULL,
    end_time INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (cgrid, run_id)
);
CREATE INDEX cdrs_setup_time ON cdrs (setup_time);
CREATE INDEX cdrs_answer_time ON cdrs (answer_time);
CREATE INDEX cdrs_tenant_account ON cdrs (tenant, account);
CREATE INDEX cdrs_origin_id ON cdrs (origin_id);
