-- name: hold_engine_version
-- Open a module's engine transaction: hold its version lock shared until commit, and read the recorded version ($1 module; NULL: never recorded).
SELECT engine_version_shared($1);

-- name: lock_engine_version
-- Take a module's version lock exclusively ($1 module): waits for every transaction that holds it shared, i.e. still runs the module under the version recorded so far.
SELECT pg_advisory_xact_lock(hashtextextended('alertd.engine:' || $1, 0));

-- name: record_engine_version
-- Record version $2 of module $1 at $3 unless an equal or newer one is recorded; the version when this call recorded it, else NULL.
INSERT INTO engine_versions AS e (module, version, recorded_at) VALUES ($1, $2, $3)
    ON CONFLICT (module) DO UPDATE SET version = EXCLUDED.version, recorded_at = EXCLUDED.recorded_at
    WHERE e.version < EXCLUDED.version
RETURNING version;
