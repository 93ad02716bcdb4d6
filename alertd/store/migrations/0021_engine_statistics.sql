-- Why: the engine's `statistics` module (alertd/engine/statistics.py) runs under a version like every module.
INSERT INTO engine_versions (module, version, recorded_at) VALUES ('statistics', 1, now()) ON CONFLICT (module) DO NOTHING;

-- Repair: 0017 (timers) writes the alerts' channel list out whole, without 'drill'. It was numbered below 0018-0020,
-- which landed before it: on a database that applied those first, 0017 ran after 0019 and dropped 'drill' from the
-- list. Every channel any migration allowed is allowed again, read and written back as 0019 does.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT array_agg(DISTINCT btrim(v, '{}" ')) INTO allowed
      FROM pg_constraint c,
           regexp_matches(pg_get_constraintdef(c.oid), '''([^'']+)''', 'g') AS m,
           unnest(string_to_array(btrim(m[1], '{}'), ',')) AS v
     WHERE c.conrelid = 'alerts'::regclass AND c.conname = 'alerts_channel_check';
    allowed := coalesce(allowed, ARRAY[]::text[]);
    IF NOT ARRAY['app', 'sms', 'button', 'traccar', 'timer', 'drill'] <@ allowed THEN
        allowed := ARRAY(SELECT DISTINCT x FROM unnest(allowed || ARRAY['app', 'sms', 'button', 'traccar', 'timer',
                                                                         'drill']) AS x);
        ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_channel_check;
        EXECUTE format('ALTER TABLE alerts ADD CONSTRAINT alerts_channel_check CHECK (channel IN (%s))',
                       (SELECT string_agg(quote_literal(x), ', ' ORDER BY x) FROM unnest(allowed) AS x));
    END IF;
END
$$;
