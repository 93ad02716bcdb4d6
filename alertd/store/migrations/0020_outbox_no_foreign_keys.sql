-- Why: every outbox message paid its two foreign keys (alert, dispatch) four times: when it was queued, and again
-- when marking it sent moved it to outbox_done (a move between partitions is a delete and an insert, and the
-- insert checks its keys again). Each check is a query of its own that locks the alert's and the dispatch's row
-- FOR KEY SHARE: about 24 of the ~35 key checks an alert cost, a row lock written into the alert and dispatch rows by
-- every batch the sender marks, and a sender that waits, its whole batch with it, while the deadline engine or an
-- officer holds one of those alerts FOR UPDATE. And a check is planned once per connection: planned while the
-- tables were recorded as empty (a database-wide ANALYZE before the first alert), it scans the whole table, and
-- keeps doing so as the table grows until autovacuum analyzes it again (bench/sustained.py --analyze-all:
-- `mark_outbox_sent` 91 ms a batch of 200 before, 0.8 ms after; docs/benchmarks.md).
--
-- The references stay good by construction, as sms_messages.outbox_id's has since 0009: a message is written only
-- by Batch.flush, in the transaction that creates or holds the alert and dispatch it names, and alerts and
-- dispatches are never deleted (retention coarsens them in place).
ALTER TABLE outbox DROP CONSTRAINT outbox_partitioned_alert_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_partitioned_dispatch_id_fkey;
