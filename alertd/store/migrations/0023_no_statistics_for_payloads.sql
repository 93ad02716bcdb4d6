-- Why: autovacuum analyzes a table each time a tenth of it is new, and on every analyze it sorted a sample of 30,000
-- message payloads and event details (jsonb) to build statistics no query uses: nothing alertd runs filters or joins
-- on those columns, and a condition on a key inside one (payload->>'code') takes the planner's default estimate
-- whatever the column's statistics say. While the tables grow from empty (a new region's first days, every benchmark)
-- that sorting was most of autovacuum's work: 8% of PostgreSQL's CPU under bench/intake.py's full load, three
-- quarters of it in jsonb comparisons (perf, docs/benchmarks.md). Without statistics, those columns are not sampled.
ALTER TABLE outbox ALTER COLUMN payload SET STATISTICS 0;   -- recurses to both partitions
ALTER TABLE alert_events ALTER COLUMN data SET STATISTICS 0;
ALTER TABLE security_events ALTER COLUMN detail SET STATISTICS 0;
ALTER TABLE audit_log ALTER COLUMN detail SET STATISTICS 0;
