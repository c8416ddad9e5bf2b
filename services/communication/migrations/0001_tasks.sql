-- What the engine knows of each regulation, projected from the drafting events.
CREATE TABLE regulations (
    regulation_id               text PRIMARY KEY,
    regulation_type             smallint NOT NULL,
    title                       text NOT NULL,
    lead_agency_id              text NOT NULL,
    impact_level                smallint NOT NULL,
    affected_groups             text[] NOT NULL,
    affected_province_codes     text[] NOT NULL,
    planned_consultation_start  timestamptz,
    planned_adoption            timestamptz,
    withdrawn                   boolean NOT NULL DEFAULT false
);

-- Communication tasks. task_id is derived from the triggering event, rule and region, so a
-- redelivered event cannot create a task twice.
CREATE TABLE tasks (
    task_id              uuid PRIMARY KEY,
    regulation_id        text NOT NULL REFERENCES regulations,
    trigger_event_id     text NOT NULL,
    trigger_event_type   text NOT NULL,
    playbook_rule        text NOT NULL,
    playbook_version     text NOT NULL,
    kind                 text NOT NULL,
    title                text NOT NULL,
    channel              smallint NOT NULL,
    owner_org_id         text NOT NULL,
    audience             text NOT NULL,
    region_ids           text[] NOT NULL,
    due_at               timestamptz NOT NULL,
    priority             smallint NOT NULL,
    status               smallint NOT NULL,
    accepted_by          text,
    percent_done         integer NOT NULL DEFAULT 0,
    progress_note        text,
    evidence_url         text,
    evidence_reach       bigint,
    evidence_note        text,
    cancel_reason        text,
    overdue_at           timestamptz,
    escalated_to_org_id  text,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    completed_at         timestamptz
);
CREATE INDEX tasks_owner ON tasks (owner_org_id, status, due_at);
CREATE INDEX tasks_escalated ON tasks (escalated_to_org_id) WHERE escalated_to_org_id IS NOT NULL;
CREATE INDEX tasks_regulation ON tasks (regulation_id, created_at);
-- Open tasks not yet found overdue, in due order, for the overdue sweep.
CREATE INDEX tasks_open_due ON tasks (due_at) WHERE overdue_at IS NULL AND status NOT IN (5, 7);

-- Events about a regulation the engine has not seen registered yet (topics are ordered per
-- regulation only within one topic); they are applied once its DraftRegistered arrives.
CREATE TABLE deferred_events (
    event_id       text PRIMARY KEY,
    regulation_id  text NOT NULL,
    record_key     bytea NOT NULL,
    value          bytea NOT NULL,
    headers        jsonb NOT NULL,
    deferred_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deferred_events_regulation ON deferred_events (regulation_id, deferred_at);
