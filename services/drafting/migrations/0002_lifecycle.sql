-- What the lifecycle transitions record beside the draft itself.
ALTER TABLE drafts ADD COLUMN withdrawal_reason text NOT NULL DEFAULT '';

-- ListDrafts pages through drafts newest first by (created_at, regulation_id).
CREATE INDEX drafts_created ON drafts (created_at, regulation_id);

-- Every impact assessment as recorded; the draft holds the latest one's level, groups and
-- provinces.
CREATE TABLE impact_assessments (
    id                       bigserial PRIMARY KEY,
    regulation_id            text NOT NULL REFERENCES drafts,
    assessed_at              timestamptz NOT NULL,
    impact_level             smallint NOT NULL,
    assessment_summary       text NOT NULL,
    affected_groups          text[] NOT NULL,
    affected_province_codes  text[] NOT NULL
);
CREATE INDEX impact_assessments_regulation ON impact_assessments (regulation_id, assessed_at);

-- Idempotency keys move to the table every service shares (policykit/0002), which the shared
-- migrations create before this one runs.
INSERT INTO idempotent_requests (idempotency_key, method, response, created_at)
    SELECT idempotency_key, method, response, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
