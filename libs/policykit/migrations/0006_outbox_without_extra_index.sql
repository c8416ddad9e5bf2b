-- Every event a service emits is written to the outbox and deleted once published, so each
-- thing the outbox keeps costs PostgreSQL a little on every event (on the task engine, a
-- row per task). Two kept nothing anyone reads:
-- * the unique index on event_id: ids are new UUIDs; a copy of an event is absorbed by its
--   consumers' inboxes (the rows go once published, so this never caught one anyway);
-- * jsonb for the headers: the relay reads them back as text; PostgreSQL parsed each row's
--   JSON into jsonb and printed it again.
-- (`tests.bench.profile_engine`, four runs each way: PostgreSQL's CPU a task 85-101 -> 75-82 µs.)
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;
ALTER TABLE outbox ALTER COLUMN headers TYPE text;
