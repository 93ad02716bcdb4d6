-- Why: commodity GPS SOS watches and trackers (GT06, H02, "watch" protocols) reach alertd through a Traccar
-- server, which forwards its events as JSON. Each Traccar server is a gateway with a bearer token of its own
-- (only its SHA-256 is kept); a tracker is mapped to a person by Traccar's uniqueId (its IMEI); an SOS alarm
-- raises her alert once per (gateway, Traccar event id), which `traccar_events` remembers.

CREATE TABLE gateways (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    kind          text NOT NULL DEFAULT 'traccar' CHECK (kind IN ('traccar')),
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);

CREATE TABLE trackers (
    unique_id   text PRIMARY KEY CHECK (length(unique_id) BETWEEN 1 AND 128),
    person_id   text NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    gateway_id  bigint REFERENCES gateways(id),    -- only this gateway speaks for it; NULL: any gateway
    added_at    timestamptz NOT NULL,
    removed_at  timestamptz
);
CREATE INDEX trackers_person ON trackers (person_id);

-- One row per SOS event acted on; alert_id is NULL only inside the transaction that raises its alert (the row
-- is written first, so a second copy of the event waits for the first one's commit and then finds its alert).
CREATE TABLE traccar_events (
    gateway_id   bigint NOT NULL REFERENCES gateways(id),
    event_id     bigint NOT NULL,
    unique_id    text NOT NULL,
    alert_id     uuid REFERENCES alerts(id),
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, event_id)
);
CREATE INDEX traccar_events_alert ON traccar_events (alert_id);

-- Alerts from trackers carry channel 'traccar'. The channel list is extended, not rewritten: whatever channels
-- earlier migrations allowed stay allowed.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT array_agg(m[1]) INTO allowed
      FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([^'']+)''', 'g') AS m
     WHERE c.conrelid = 'alerts'::regclass AND c.conname = 'alerts_channel_check';
    IF allowed IS NULL OR NOT 'traccar' = ANY (allowed) THEN
        ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_channel_check;
        EXECUTE format('ALTER TABLE alerts ADD CONSTRAINT alerts_channel_check CHECK (channel = ANY (%L::text[]))',
                       array_append(coalesce(allowed, ARRAY['app', 'sms', 'button']), 'traccar'));
    END IF;
END
$$;
