-- Why: drills (issue 15 §3). A supervisor or admin starts a drill: a drill alert at a chosen point or person,
-- dispatched to real responders by the normal path, every message to them marked DRILL, and its deadlines and
-- escalations run by the engine as for any alert. A drill alert belongs to nobody: person_id is NULL, so the
-- repeats logic can never join it to her real open alert (or hers to it), no reply or cancel of hers can reach it,
-- and nothing is ever sent to her phone or device. `alerts.drill` (generated from the channel, so it cannot
-- disagree with it) is what every statistic, metric and console list of real alerts filters on.

-- Alerts of drills carry channel 'drill'. The channel list is extended, not rewritten: whatever channels earlier
-- migrations allowed stay allowed, whether the constraint reads IN ('app', 'sms', ...) (PostgreSQL shows it as
-- ARRAY['app'::text, ...]) or = ANY ('{app,sms,...}'::text[]) (as 0016 writes it), even one an earlier migration
-- mangled by reading '{app,sms,...}' as a single name ('{"{app,sms}",timer}': braces and quotes are stripped from
-- each name). It is written back as an IN list, one quoted name each, which any later migration can read.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT array_agg(DISTINCT btrim(v, '{}" ')) INTO allowed
      FROM pg_constraint c,
           regexp_matches(pg_get_constraintdef(c.oid), '''([^'']+)''', 'g') AS m,
           unnest(string_to_array(btrim(m[1], '{}'), ',')) AS v
     WHERE c.conrelid = 'alerts'::regclass AND c.conname = 'alerts_channel_check';
    IF allowed IS NULL OR NOT 'drill' = ANY (allowed) THEN
        allowed := array_append(coalesce(allowed, ARRAY['app', 'sms', 'button']), 'drill');
        ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_channel_check;
        EXECUTE format('ALTER TABLE alerts ADD CONSTRAINT alerts_channel_check CHECK (channel IN (%s))',
                       (SELECT string_agg(quote_literal(x), ', ' ORDER BY x) FROM unnest(allowed) AS x));
    END IF;
END
$$;

ALTER TABLE alerts ALTER COLUMN person_id DROP NOT NULL;
ALTER TABLE alerts ADD COLUMN drill boolean GENERATED ALWAYS AS (channel = 'drill') STORED;
-- Only a drill has no person; a drill never has one.
ALTER TABLE alerts ADD CONSTRAINT alerts_person_unless_drill CHECK ((person_id IS NULL) = (channel = 'drill'));
CREATE INDEX alerts_drill ON alerts (created_at) WHERE drill;

CREATE TABLE drills (
    id          uuid PRIMARY KEY,
    alert_id    uuid NOT NULL UNIQUE REFERENCES alerts(id),
    started_by  text NOT NULL,                         -- the actor: supervisor:NAME, admin:NAME, cli:USER
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,                           -- ended by hand (POST /v1/drills/{id}/end); a drill whose
    ended_by    text,                                  -- dispatches were all resolved ends with its alert's closed_at
    region      text,                                  -- the drill alert's region (its nearest police post's)
    target      text NOT NULL CHECK (target IN ('place', 'person')),
    person_id   text REFERENCES people(id) ON DELETE SET NULL  -- the person a 'person' drill is at: never contacted
);
CREATE INDEX drills_started ON drills (started_at);
