-- Why: the outbox is a queue and a record at once. Every message sent left a dead row version in the claim's
-- index, and vacuuming it meant scanning every message ever sent (the table and its three indexes): cheap at
-- first, slower with every day of history, and while it waits each claim reads past the dead entries
-- (bench/deadlines.py, 10k deadlines over a minute: claims of 10 to 45 ms, deadlines seconds late).
-- Partitioned by status, the queue is `outbox_pending`: only what is waiting, vacuumed after every 500 dead rows
-- whatever its size, in moments; what was sent or failed moves to `outbox_done` and is only ever appended to.
-- Every query still reads `outbox`; the claim reads only the pending partition.
--
-- A partitioned table's unique keys must hold the partition key, so the primary key is (id, status) and
-- sms_messages.outbox_id can no longer be a foreign key: outbox rows are never deleted, and the SMS notifier
-- writes an sms_messages row only for the outbox message it holds, so the reference stays good by construction.

ALTER SEQUENCE outbox_id_seq OWNED BY NONE;
ALTER TABLE sms_messages DROP CONSTRAINT sms_messages_outbox_id_fkey;

CREATE TABLE outbox_partitioned (
    id              bigint NOT NULL DEFAULT nextval('outbox_id_seq'),
    channel         text NOT NULL,
    recipient       text NOT NULL,
    template        text NOT NULL,
    payload         jsonb NOT NULL,
    alert_id        uuid REFERENCES alerts(id),
    dispatch_id     uuid REFERENCES dispatches(id),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    provider_ref    text,
    last_error      text,
    leased_until    timestamptz
) PARTITION BY LIST (status);

-- Room on each page for the lease's HOT update; vacuumed after a fixed number of dead rows, not a share of them.
CREATE TABLE outbox_pending PARTITION OF outbox_partitioned FOR VALUES IN ('pending')
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
          autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000,
          autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 500,
          autovacuum_vacuum_cost_delay = 0);
CREATE TABLE outbox_done PARTITION OF outbox_partitioned FOR VALUES IN ('sent', 'failed');

INSERT INTO outbox_partitioned (id, channel, recipient, template, payload, alert_id, dispatch_id, status, attempts,
                                next_attempt_at, created_at, sent_at, provider_ref, last_error, leased_until)
SELECT id, channel, recipient, template, payload, alert_id, dispatch_id, status, attempts, next_attempt_at,
       created_at, sent_at, provider_ref, last_error, leased_until
  FROM outbox;

DROP TABLE outbox;
ALTER TABLE outbox_partitioned RENAME TO outbox;
ALTER SEQUENCE outbox_id_seq OWNED BY outbox.id;
ALTER TABLE outbox ADD CONSTRAINT outbox_pkey PRIMARY KEY (id, status);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_dispatch ON outbox (dispatch_id, id) WHERE dispatch_id IS NOT NULL;
