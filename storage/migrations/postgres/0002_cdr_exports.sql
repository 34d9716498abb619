-- Which CDRs each exporter has dealt with: one row per (exporter, CGRID,
-- RunID), written once the CDR is exported (or parked, or left out by the
-- exporter's filters), so a restart never exports it again.
CREATE TABLE cdr_exports (
    exporter TEXT NOT NULL,
    cgrid TEXT NOT NULL,
    run_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (exporter, cgrid, run_id)
);
