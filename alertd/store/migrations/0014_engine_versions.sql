-- Why: during a rolling upgrade two releases of `alertd serve` run side by side, and both ran every engine module:
-- a release that escalates or words a notice differently would fire some deadlines its way and some the old way.
-- Each engine module carries a version in the code; this table records, per module, the version the cluster runs.
-- An instance of an older release stands that module down; the first instance of a newer release records its own
-- version (the upgrade) once every transaction still running the module under the old version has ended, so from
-- then on only the new release fires (GoAlert's engine/processinglock). This release's modules start at version 1;
-- a module added later gets its row on its first run.
CREATE TABLE engine_versions (
    module      text PRIMARY KEY,                   -- deadlines, supervision, outbox, retention
    version     int NOT NULL CHECK (version > 0),
    recorded_at timestamptz NOT NULL
);
INSERT INTO engine_versions (module, version, recorded_at)
VALUES ('deadlines', 1, now()), ('supervision', 1, now()), ('outbox', 1, now()), ('retention', 1, now());

-- Every engine transaction of a module opens with this: the module's advisory lock, shared (instances of one
-- release never hold each other back), then the recorded version. An upgrade takes the same lock exclusively.
-- A function so that it is one round trip and still safe: a VOLATILE function's second statement reads with a
-- fresh snapshot, taken after the lock was granted, so it sees an upgrade that committed while it waited.
CREATE FUNCTION engine_version_shared(p_module text) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('alertd.engine:' || p_module, 0));
    RETURN (SELECT version FROM engine_versions WHERE module = p_module);
END $$;
