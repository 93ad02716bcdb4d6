-- Why: two statements queue messages (write_timeline_and_outbox, and the intake's insert_alerts, which writes a
-- group's timeline and outbox with its alerts to save a round trip). How a message enters the outbox is one rule,
-- written once here: a console message is delivered by the commit that queues it (its NOTIFY), so it is recorded as
-- sent; any other is leased for `lease_s` seconds to the instance that queued it, or, with no lease, waits for a
-- claim. STABLE, not STRICT, plain SQL: the planner inlines it into the statement that calls it.
CREATE FUNCTION outbox_entry(channel text, at timestamptz, lease_s float8)
RETURNS TABLE (status text, sent_at timestamptz, attempts int, leased_until timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN channel = 'console' THEN 'sent' ELSE 'pending' END,
           CASE WHEN channel = 'console' THEN at END,
           CASE WHEN channel = 'console' OR lease_s IS NOT NULL THEN 1 ELSE 0 END,
           CASE WHEN channel <> 'console' THEN at + make_interval(secs => lease_s) END
$$;
