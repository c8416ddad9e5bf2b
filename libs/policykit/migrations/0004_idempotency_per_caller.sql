-- A key belongs to the organisation that sent it ('' for calls made without authentication,
-- and for keys remembered before this migration) and to one request, known by its digest
-- (NULL for keys remembered before this migration: any request matches them).
ALTER TABLE idempotent_requests ADD COLUMN caller text NOT NULL DEFAULT '';
ALTER TABLE idempotent_requests ADD COLUMN request_digest bytea;
ALTER TABLE idempotent_requests DROP CONSTRAINT idempotent_requests_pkey;
ALTER TABLE idempotent_requests ADD PRIMARY KEY (caller, idempotency_key);
