-- Why: claiming a message used to move its next_attempt_at (an indexed column) and marking it sent moved it
-- again, so every message left two dead entries in the claim's index and a burst made each claim slower than
-- the last (bench/deadlines.py: 86% of PostgreSQL's time in claims). The lease now lives in its own column,
-- which no index covers, so a claim is a HOT update; pages keep room for it, and the table is vacuumed early.
ALTER TABLE outbox ADD COLUMN leased_until timestamptz;
ALTER TABLE outbox SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02,
                        autovacuum_vacuum_insert_scale_factor = 0.02);
-- The claim orders by (next_attempt_at, id): an index in that order lets it stop after one batch instead of
-- sorting every due message (60,000 of them in a burst).
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
