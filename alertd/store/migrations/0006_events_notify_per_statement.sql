-- Why: one NOTIFY per timeline row cost every instance a notification per event (five or more per alert), even
-- when no console was connected. One NOTIFY per statement naming the range of new event ids is enough: an
-- instance with consoles connected reads those rows (one query), an instance without ignores one small message.
DROP TRIGGER alert_events_notify ON alert_events;
DROP FUNCTION alert_events_notify();

CREATE FUNCTION alert_events_notify_range() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first_id bigint;
    last_id bigint;
BEGIN
    SELECT min(id), max(id) INTO first_id, last_id FROM new_events;
    IF first_id IS NOT NULL THEN
        PERFORM pg_notify('alertd_events', json_build_object('first_id', first_id, 'last_id', last_id)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER alert_events_notify_range AFTER INSERT ON alert_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION alert_events_notify_range();
