-- Why: survivors' precise whereabouts must not outlive their need. Once an alert has been closed for the
-- retention period (ALERTD_RETENTION_PRECISE_DAYS), the engine's retention module deletes its location trail,
-- coarsens its best location to about 1 km, and removes the free text that may hold where she was or who she is
-- (her SMS on the timeline, officers' notes, the place in messages sent to responders). Security events and the
-- audit log go after ALERTD_RETENTION_AUDIT_DAYS. `purged_at` marks an alert done, so each pass takes only new
-- work; every pass that removed something leaves a row in retention_purges with counts, never content.
--
-- The timeline stays append-only: the trigger now lets exactly one change through, the retention module
-- replacing an SMS event's `note` with a marker (nothing else about the event may change, and no event may be
-- deleted).

ALTER TABLE alerts ADD COLUMN purged_at timestamptz;
-- The retention claim: closed alerts not yet purged, oldest closed first.
CREATE INDEX alerts_retention_due ON alerts (closed_at) WHERE purged_at IS NULL AND closed_at IS NOT NULL;
CREATE INDEX security_events_at ON security_events (at);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);

CREATE TABLE retention_purges (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL,
    actor    text NOT NULL,                           -- engine, or cli
    counts   jsonb NOT NULL                           -- what was removed, per kind: numbers only
);

CREATE OR REPLACE FUNCTION alert_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.id = OLD.id AND NEW.alert_id = OLD.alert_id AND NEW.at = OLD.at AND NEW.type = OLD.type
       AND NEW.dispatch_id IS NOT DISTINCT FROM OLD.dispatch_id
       AND NEW.responder_id IS NOT DISTINCT FROM OLD.responder_id
       AND NEW.actor IS NOT DISTINCT FROM OLD.actor
       AND OLD.data ? 'note'
       AND NEW.data = (OLD.data - 'note') || '{"note_purged": true}'::jsonb THEN
        RETURN NEW;  -- retention: her words leave the timeline, the event stays
    END IF;
    RAISE EXCEPTION 'alert_events is append-only';
END $$;
