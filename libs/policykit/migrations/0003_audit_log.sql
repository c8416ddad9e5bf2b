-- Audit log: a row per state change and request, written in the transaction that makes the
-- change (issue #9: who, when, what, from which request). Identifiers and roles only, never
-- personal data.
CREATE TABLE audit_log (
    id                bigserial PRIMARY KEY,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    -- The calling organisation (gRPC), or `service:<schema>` for what an event or a timer did.
    actor             text NOT NULL,
    actor_roles       text[] NOT NULL DEFAULT '{}',
    authenticated_by  text,  -- token, mtls, none (unchecked); NULL for the service itself
    via               text NOT NULL CHECK (via IN ('grpc', 'event', 'timer')),
    -- gRPC: the method path, the x-request-id (the client's or one made for it) and the
    -- idempotency key; event: the triggering event's type and id; timer: NULL.
    request           text,
    request_id        text,
    idempotency_key   text,
    action            text NOT NULL,  -- the event type, e.g. policy.drafting.v1.DraftRegistered
    subject           text NOT NULL,  -- the regulation
    -- The events the change emitted (on their topic, in the outbox): one, or the comments one
    -- request submitted, which take one row, not one each.
    event_ids         uuid[] NOT NULL DEFAULT '{}',
    detail            jsonb           -- other ids: task, consultation, owner organisation …
);
CREATE INDEX audit_log_subject ON audit_log (subject, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
-- Rows arrive in time order: a BRIN index finds `since` at almost no cost per insert.
CREATE INDEX audit_log_recorded_at ON audit_log USING brin (recorded_at);

-- Append-only, for the service's own role too: a trigger refuses every change and removal.
-- (A table owner can still drop the trigger; that is DDL, which the migrations own.)
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit rows are never changed or removed';
END
$$;
-- Per statement, so that one matching no row is refused as well.
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
