-- The relay deletes the rows it published rather than marking them sent: Kafka keeps the
-- topics for ever, and rows kept after publication only grew the table (and cost the relay
-- an UPDATE a row). Rows published before this migration go now.
DELETE FROM outbox WHERE sent_at IS NOT NULL;
DROP INDEX outbox_unsent;
ALTER TABLE outbox DROP COLUMN sent_at;
