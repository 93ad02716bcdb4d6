-- Why: an undelivered dispatch SMS must be visible on the dispatch itself (GET /v1/dispatches, the alert view),
-- which reads the latest SMS of each dispatch through its outbox rows: index them by dispatch.
CREATE INDEX outbox_dispatch ON outbox (dispatch_id, id) WHERE dispatch_id IS NOT NULL;
