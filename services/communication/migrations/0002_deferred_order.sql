-- Deferred events are replayed in arrival order: a sequence number says it exactly, where two
-- events deferred in one transaction share their deferred_at (policykit.deferred).
ALTER TABLE deferred_events ADD COLUMN id bigserial;
DROP INDEX deferred_events_regulation;
CREATE INDEX deferred_events_regulation ON deferred_events (regulation_id, id);
