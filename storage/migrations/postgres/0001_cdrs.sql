-- CDRs with CGRateS's fields; one row per (CGRID, RunID).
-- Times and usage are integer nanoseconds (UTC, since the unix epoch):
-- captures have nanosecond stamps, which TIMESTAMPTZ (microseconds) would
-- cut, and a CDR reads back exactly as written. Money is NUMERIC, exact.
CREATE TABLE cdrs (
    id BIGSERIAL PRIMARY KEY,
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
    setup_time BIGINT NOT NULL,
    answer_time BIGINT,
    usage BIGINT NOT NULL,
    cost NUMERIC,
    cost_source TEXT NOT NULL,
    extra_fields JSONB NOT NULL,
    disconnect_cause TEXT NOT NULL,
    end_time BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (cgrid, run_id)
);
CREATE INDEX cdrs_setup_time ON cdrs (setup_time);
CREATE INDEX cdrs_answer_time ON cdrs (answer_time);
CREATE INDEX cdrs_tenant_account ON cdrs (tenant, account);
CREATE INDEX cdrs_origin_id ON cdrs (origin_id);
