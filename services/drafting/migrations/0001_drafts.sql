-- Drafts as the drafting service holds them; each revision is kept in draft_versions.
CREATE TABLE drafts (
    regulation_id               text PRIMARY KEY,
    regulation_type             smallint NOT NULL,
    title                       text NOT NULL,
    summary                     text NOT NULL,
    lead_agency_id              text NOT NULL,
    impact_level                smallint NOT NULL,
    affected_groups             text[] NOT NULL,
    affected_province_codes     text[] NOT NULL,
    planned_consultation_start  timestamptz,
    planned_adoption            timestamptz,
    state                       smallint NOT NULL,
    version                     integer NOT NULL,
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL
);
CREATE INDEX drafts_lead_agency ON drafts (lead_agency_id, created_at);

CREATE TABLE draft_versions (
    regulation_id   text NOT NULL REFERENCES drafts,
    version         integer NOT NULL,
    title           text NOT NULL,
    summary         text NOT NULL,
    change_summary  text NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (regulation_id, version)
);

-- The first response to each idempotency key, returned again to retries.
CREATE TABLE idempotency_keys (
    idempotency_key  text PRIMARY KEY,
    method           text NOT NULL,
    response         bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
