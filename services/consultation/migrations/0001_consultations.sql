-- Drafts as far as the consultation service needs them, projected from policy.drafting.v1.
CREATE TABLE drafts (
    regulation_id    text PRIMARY KEY,
    regulation_type  smallint NOT NULL,
    title            text NOT NULL,
    lead_agency_id   text NOT NULL
);

-- One consultation window per draft submitted for consultation.
CREATE TABLE consultations (
    consultation_id          uuid PRIMARY KEY,
    regulation_id            text NOT NULL UNIQUE REFERENCES drafts,
    state                    smallint NOT NULL,   -- policy.consultation.v1.ConsultationState
    opens_at                 timestamptz NOT NULL,
    closes_at                timestamptz NOT NULL,
    closed_at                timestamptz,
    closing_reason           smallint NOT NULL DEFAULT 0,  -- ClosingReason
    -- The ConsultationClosed event once the totals are counted.
    summary                  bytea,
    -- Bumped by every answer; the report is produced again while it is ahead of the report's.
    answers_version          integer NOT NULL DEFAULT 0,
    report_answers_version   integer NOT NULL DEFAULT 0,
    report_version           integer NOT NULL DEFAULT 0,
    report_html              text,
    report_published_at      timestamptz
);
CREATE INDEX consultations_due ON consultations (closes_at) WHERE state = 1;
CREATE INDEX consultations_closing ON consultations (closed_at) WHERE state = 2 AND summary IS NULL;

CREATE TABLE extensions (
    consultation_id     uuid NOT NULL REFERENCES consultations,
    extended_at         timestamptz NOT NULL,
    previous_closes_at  timestamptz NOT NULL,
    closes_at           timestamptz NOT NULL,
    reason              text NOT NULL
);
CREATE INDEX extensions_consultation ON extensions (consultation_id, extended_at);

-- How the agency answered comments, or a campaign as a whole.
CREATE TABLE answers (
    answer_id              uuid PRIMARY KEY,
    consultation_id        uuid NOT NULL REFERENCES consultations,
    outcome                smallint NOT NULL,   -- policy.consultation.v1.AnswerOutcome
    explanation            text NOT NULL,
    answered_by_agency_id  text NOT NULL,
    answered_at            timestamptz NOT NULL,
    campaign_id            uuid,
    comments               bigint NOT NULL
);

-- Comments as received. Contact details stay here: no event and no report carries them.
-- Rows are written with COPY and never hold foreign keys, to keep bulk intake fast; the
-- intake checks the consultation in the same transaction.
CREATE TABLE comments (
    comment_id            uuid PRIMARY KEY,   -- time-ordered (UUIDv7)
    consultation_id       uuid NOT NULL,
    idempotency_key       text NOT NULL,
    received_at           timestamptz NOT NULL,
    stakeholder_type      smallint NOT NULL,
    province_code         text NOT NULL,      -- as submitted
    province_id           text NOT NULL,      -- the unit in force on the day it arrived
    article_ref           text NOT NULL,
    article               text NOT NULL,      -- the key it is counted under
    text                  text NOT NULL,
    text_key              bigint NOT NULL,    -- signatures.exact_key of the folded text
    flagged_corrupted     boolean NOT NULL,
    commenter_pseudonym   text NOT NULL,
    contact_name          text NOT NULL,
    contact_email         text NOT NULL,
    contact_phone         text NOT NULL,
    contact_organisation  text NOT NULL,
    answer_id             uuid,               -- its own answer
    UNIQUE (consultation_id, idempotency_key)
);
CREATE INDEX comments_text ON comments (consultation_id, text_key);

-- Campaign candidates: groups of identical or near-identical texts, each led by the first
-- text that formed it. A group holding two or more comments is a campaign.
CREATE TABLE text_groups (
    group_id          uuid PRIMARY KEY,
    consultation_id   uuid NOT NULL,
    signature         bytea NOT NULL,         -- signatures.minhash of the leading text
    first_comment_id  uuid NOT NULL,
    answer_id         uuid
);

-- New distinct folded texts waiting for the grouper, as intake found them (flagged comments
-- have none): a queue with no unique key, so that concurrent intake batches never wait for
-- each other here. The grouper takes rows out in id order and places their texts.
CREATE TABLE pending_texts (
    id                bigserial PRIMARY KEY,
    consultation_id   uuid NOT NULL,
    text_key          bigint NOT NULL,
    first_comment_id  uuid NOT NULL
);

-- Every distinct folded text of a consultation the grouper has placed, and its group.
CREATE TABLE texts (
    consultation_id  uuid NOT NULL,
    text_key         bigint NOT NULL,
    group_id         uuid NOT NULL,
    PRIMARY KEY (consultation_id, text_key)
);
CREATE INDEX texts_group ON texts (group_id);

-- Locality-sensitive lookup of near-identical texts: the band keys of each group's signature.
CREATE TABLE group_bands (
    consultation_id  uuid NOT NULL,
    band             smallint NOT NULL,
    band_key         bigint NOT NULL,
    group_id         uuid NOT NULL
);
CREATE INDEX group_bands_lookup ON group_bands (consultation_id, band, band_key);

-- The service's outbox, one row per batch of events of one regulation, type and time, so that
-- thousands of CommentReceived events cost one row; the relay publishes rows in id order.
CREATE TABLE event_batches (
    id               bigserial PRIMARY KEY,
    regulation_id    text NOT NULL,
    consultation_id  uuid,
    event_type       text NOT NULL,
    event_time       timestamptz NOT NULL,
    events           integer NOT NULL,
    event_ids        uuid[] NOT NULL,
    payloads         bytea[],                 -- dropped once published
    created_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz
);
-- Serialised protobuf barely compresses: store the arrays out of line without trying to.
ALTER TABLE event_batches ALTER COLUMN payloads SET STORAGE EXTERNAL,
                          ALTER COLUMN event_ids SET STORAGE EXTERNAL;
CREATE INDEX event_batches_unpublished ON event_batches (id) WHERE published_at IS NULL;
CREATE INDEX event_batches_tally ON event_batches (consultation_id, event_type);

-- Answered comments and campaigns, counted for GetConsultation and the report.
CREATE INDEX comments_answered ON comments (consultation_id) WHERE answer_id IS NOT NULL;
CREATE INDEX text_groups_answered ON text_groups (consultation_id) WHERE answer_id IS NOT NULL;
