-- Why: a flood of refused input must not flood the security log. The contract records every refusal at most
-- once per source and kind per minute: the first refusal of an episode is a `security_events` row, and every
-- further one in the next minute only counts on that row (`refusals`, `last_at`), so the log says how many
-- were refused without a row each. `security_episodes` holds the current episode of each (kind, source): its
-- row lock is what makes "at most once" hold across concurrent requests and alertd instances.

ALTER TABLE security_events ADD COLUMN refusals int NOT NULL DEFAULT 1,
                            ADD COLUMN last_at timestamptz;
UPDATE security_events SET last_at = at;
ALTER TABLE security_events ALTER COLUMN last_at SET NOT NULL;

CREATE TABLE security_episodes (
    kind        text NOT NULL,
    source      text NOT NULL,
    started_at  timestamptz NOT NULL,
    event_id    bigint NOT NULL,                  -- the security_events row this episode counts on
    PRIMARY KEY (kind, source)
);
