-- The benchmarks' own queries (loaded by bench/sms_webhook.py, never by alertd).

-- name: count_outbox_backlog
-- Outbox messages due and not yet sent (the SMS benchmark waits for zero between runs).
SELECT count(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= now();
