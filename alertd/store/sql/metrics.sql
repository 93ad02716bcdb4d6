-- /metrics: gauges read from the database at scrape time (the same on every instance).

-- name: count_alerts
-- Real alerts by status, for /metrics (drills are counted apart: count_drill_alerts).
SELECT status, count(*) AS n FROM alerts WHERE NOT drill GROUP BY status;

-- name: count_drill_alerts
-- Drill alerts by status, for /metrics (alertd_drill_alerts): never in a real alert's figures.
SELECT status, count(*) AS n FROM alerts WHERE drill GROUP BY status;

-- name: count_dispatches
-- Dispatches of real alerts by kind and status, for /metrics (drill alerts are few: the partial index finds them).
SELECT kind, status, count(*) AS n FROM dispatches
 WHERE alert_id NOT IN (SELECT id FROM alerts WHERE drill) GROUP BY kind, status;

-- name: count_outbox_unsent
-- Messages waiting or failed, by channel (for /metrics).
SELECT channel, status, count(*) AS n FROM outbox WHERE status <> 'sent' GROUP BY channel, status;

-- name: count_overdue_deadlines
-- Pending dispatches of real alerts past their deadline, by kind, and how long the oldest has waited ($1 now): the engine's lag (a drill's are left out: its figures are the drill report's).
SELECT kind, count(*) AS n, extract(epoch FROM $1 - min(ack_deadline))::float8 AS oldest_s
  FROM dispatches WHERE status = 'pending' AND ack_deadline < $1
   AND alert_id NOT IN (SELECT id FROM alerts WHERE drill) GROUP BY kind;

-- name: measure_outbox_oldest
-- How long the oldest message waiting to be sent has waited, by channel ($1 now).
SELECT channel, extract(epoch FROM $1 - min(created_at))::float8 AS oldest_s
  FROM outbox WHERE status = 'pending' GROUP BY channel;

-- name: count_sms_deliveries
-- SMS to responders by provider and delivery state, among those updated since $1 (the last 15 minutes).
SELECT provider, coalesce(delivery, state) AS delivery, count(*) AS n
  FROM sms_messages WHERE updated_at >= $1 GROUP BY provider, coalesce(delivery, state);

-- name: count_on_duty
-- Responders on duty by region and kind, zero included for every kind of a region that has responders; a unit
-- whose terminal has reported, but not since $1, is off duty (as dispatch counts it).
SELECT g.region, k.kind,
       count(r.id) FILTER (WHERE r.on_duty AND (r.last_seen_at IS NULL OR r.last_seen_at >= $1)) AS n
  FROM (SELECT DISTINCT region FROM responders) g
 CROSS JOIN unnest(ARRAY['police_post', 'crisis_centre', 'mobile_unit']) AS k(kind)
  LEFT JOIN responders r ON r.region = g.region AND r.kind = k.kind
 GROUP BY g.region, k.kind;

-- name: count_buttons
-- Live buttons that have been heard from at least once, and those of them not heard from since $1 (the silence
-- period); a button provisioned but not yet switched on counts in neither.
SELECT count(*) AS total, count(*) FILTER (WHERE b.last_seen_at < $1) AS silent
  FROM buttons b JOIN devices d ON d.id = b.device_id WHERE d.revoked_at IS NULL AND b.last_seen_at IS NOT NULL;

-- name: measure_replication_lag
-- Each standby's replay lag as the primary sees it (needs the pg_monitor role; empty on a standby or alone).
SELECT application_name AS standby, coalesce(extract(epoch FROM replay_lag), 0)::float8 AS lag_s
  FROM pg_stat_replication;
