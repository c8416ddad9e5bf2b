-- The first response given to each idempotency key, returned again to retries.
CREATE TABLE idempotent_requests (
    idempotency_key  text PRIMARY KEY,
    method           text NOT NULL,
    response         bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
