-- What the publication service knows of each regulation: projected from the drafting
-- events, then moved on by promulgation, entry into force and repeal. status is a
-- policy.publication.v1.RegulationStatus.
CREATE TABLE regulations (
    regulation_id    text PRIMARY KEY,
    regulation_type  smallint NOT NULL,
    title            text NOT NULL,
    summary          text NOT NULL,
    lead_agency_id   text NOT NULL,
    status           smallint NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- The promulgation record: signature, gazette, and the effective date with the rule or the
-- reason behind it.
CREATE TABLE promulgations (
    regulation_id                   text PRIMARY KEY REFERENCES regulations,
    document_number                 text NOT NULL UNIQUE,
    signer                          text NOT NULL,
    signed_at                       timestamptz NOT NULL,
    gazette_number                  text NOT NULL,
    gazette_published_at            timestamptz NOT NULL,
    effective_at                    timestamptz NOT NULL,
    effective_date_rule             text NOT NULL,
    effective_date_override_reason  text NOT NULL,
    recorded_at                     timestamptz NOT NULL
);

-- Amendments and repeals: regulation_id was amended or repealed by by_regulation_id.
CREATE TABLE regulation_links (
    event_id          uuid PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('amended', 'repealed')),
    regulation_id     text NOT NULL REFERENCES regulations,
    by_regulation_id  text NOT NULL REFERENCES regulations,
    articles          text[] NOT NULL,
    linked_at         timestamptz NOT NULL,
    UNIQUE (kind, regulation_id, by_regulation_id)
);
CREATE INDEX regulation_links_by ON regulation_links (by_regulation_id);

-- Durable timers: the event each one emits is fixed when it is scheduled. A worker fires a
-- due timer by marking it and putting its event in the outbox in one transaction, so it
-- fires once whatever restarts, and never before fire_at.
CREATE TABLE timers (
    id             bigserial PRIMARY KEY,
    regulation_id  text NOT NULL REFERENCES regulations,
    kind           text NOT NULL,
    fire_at        timestamptz NOT NULL,
    event_id       uuid NOT NULL UNIQUE,
    event_type     text NOT NULL,
    payload        bytea NOT NULL,
    created_at     timestamptz NOT NULL,
    fired_at       timestamptz,
    cancelled_at   timestamptz,
    UNIQUE (regulation_id, kind)
);
CREATE INDEX timers_due ON timers (fire_at) WHERE fired_at IS NULL AND cancelled_at IS NULL;

-- One line per event that happened to a regulation, from every stage; an amendment or a
-- repeal has a line on both regulations. seq breaks ties between equal times.
CREATE TABLE timeline_entries (
    seq            bigserial NOT NULL,
    regulation_id  text NOT NULL,
    event_id       text NOT NULL,
    event_type     text NOT NULL,
    topic          text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    description    text NOT NULL,
    PRIMARY KEY (regulation_id, event_id)
);
CREATE INDEX timeline_entries_order ON timeline_entries (regulation_id, occurred_at, seq);

-- Communication tasks as their latest task event left them; task is the
-- policy.communication.v1.Task of TaskCreated.
CREATE TABLE tasks (
    task_id              text PRIMARY KEY,
    regulation_id        text NOT NULL,
    task                 bytea NOT NULL,
    kind                 text NOT NULL,
    owner_org_id         text NOT NULL,
    created_at           timestamptz NOT NULL,
    status               smallint NOT NULL,
    status_changed_at    timestamptz NOT NULL,
    evidence             bytea,
    escalated_to_org_id  text NOT NULL DEFAULT '',
    completed_late       boolean NOT NULL DEFAULT false,
    percent_done         integer NOT NULL DEFAULT 0,
    cancel_reason        text NOT NULL DEFAULT ''
);
CREATE INDEX tasks_regulation ON tasks (regulation_id, created_at);

-- Consultation windows with comments counted as they arrive and the totals they closed
-- with; closing is the policy.consultation.v1.ConsultationClosed event. A window is known by
-- its regulation and its id, which the consultation service chooses.
CREATE TABLE consultations (
    regulation_id        text NOT NULL,
    consultation_id      text NOT NULL,
    opens_at             timestamptz,
    closes_at            timestamptz,
    closed_at            timestamptz,
    comments_received    bigint NOT NULL DEFAULT 0,
    comments_answered    bigint NOT NULL DEFAULT 0,
    closing              bytea,
    report_url           text NOT NULL DEFAULT '',
    report_published_at  timestamptz,
    PRIMARY KEY (regulation_id, consultation_id)
);

-- Promulgated regulations whose open-data document changed and is not yet republished.
CREATE TABLE open_data_pending (
    regulation_id  text PRIMARY KEY,
    marked_at      timestamptz NOT NULL DEFAULT now()
);
