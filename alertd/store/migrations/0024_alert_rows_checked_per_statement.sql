-- Why: every timeline event, fix and dispatch checked its alert with a foreign key: a query of its own per row
-- (SELECT ... FOR KEY SHARE of the alert), nine for each alert the intake commits, all for alerts the same
-- statement had just inserted. Under full load those checks were an eighth of PostgreSQL's CPU (perf,
-- docs/benchmarks.md). The rule is the same, checked once per statement over all the rows it wrote: a statement
-- that writes a row naming an alert that does not exist fails whole, with foreign_key_violation, as before. What the
-- foreign key also did on the other side is done here too: an alert is never deleted or truncated (retention
-- coarsens alerts in place), and a row's alert_id never changes.
CREATE FUNCTION check_rows_name_alerts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A probe of the alerts' key for each row (a correlated subquery): never a scan of every alert.
    IF EXISTS (SELECT 1 FROM written w WHERE (SELECT a.id FROM alerts a WHERE a.id = w.alert_id) IS NULL) THEN
        RAISE EXCEPTION 'insert on table "%" names an alert that does not exist', TG_TABLE_NAME
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION refuse_new_alert_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the alert_id of a row in "%" never changes', TG_TABLE_NAME USING ERRCODE = 'foreign_key_violation';
END $$;

CREATE FUNCTION refuse_alert_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alerts are never removed (retention coarsens them in place)' USING ERRCODE = 'foreign_key_violation';
END $$;

ALTER TABLE alert_events DROP CONSTRAINT alert_events_alert_id_fkey;
ALTER TABLE location_fixes DROP CONSTRAINT location_fixes_alert_id_fkey;
ALTER TABLE dispatches DROP CONSTRAINT dispatches_alert_id_fkey;

-- The timeline's transition table is the one its NOTIFY trigger (0006) already keeps: PostgreSQL builds it once.
CREATE TRIGGER alert_events_name_alerts AFTER INSERT ON alert_events
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION check_rows_name_alerts();
CREATE TRIGGER location_fixes_name_alerts AFTER INSERT ON location_fixes
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION check_rows_name_alerts();
CREATE TRIGGER dispatches_name_alerts AFTER INSERT ON dispatches
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION check_rows_name_alerts();

-- Column triggers: they fire only for an UPDATE that sets alert_id, so a status change pays nothing.
CREATE TRIGGER location_fixes_keep_alert BEFORE UPDATE OF alert_id ON location_fixes
    FOR EACH ROW WHEN (NEW.alert_id IS DISTINCT FROM OLD.alert_id) EXECUTE FUNCTION refuse_new_alert_id();
CREATE TRIGGER dispatches_keep_alert BEFORE UPDATE OF alert_id ON dispatches
    FOR EACH ROW WHEN (NEW.alert_id IS DISTINCT FROM OLD.alert_id) EXECUTE FUNCTION refuse_new_alert_id();
-- (alert_events is append-only already: 0001, 0010.)

CREATE TRIGGER alerts_never_deleted BEFORE DELETE ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_alert_removal();
CREATE TRIGGER alerts_never_truncated BEFORE TRUNCATE ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_alert_removal();
