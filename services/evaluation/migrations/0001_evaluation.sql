-- What the service knows of each regulation, from the drafting and consultation events.
CREATE TABLE regulations (
    regulation_id               text PRIMARY KEY,
    title                       text NOT NULL,
    lead_agency_id              text NOT NULL,
    impact_level                smallint NOT NULL,
    affected_province_codes     text[] NOT NULL,
    planned_consultation_start  timestamptz,
    -- The first consultation's opening: goes-first tasks completed later missed it.
    consultation_opened_at      timestamptz,
    registered_at               timestamptz NOT NULL,
    withdrawn                   boolean NOT NULL DEFAULT false
);
CREATE INDEX regulations_lead_agency ON regulations (lead_agency_id);

-- Every lifecycle event handled, as one line of Vietnamese: the regulation's timeline.
CREATE TABLE timeline (
    regulation_id  text NOT NULL,
    event_id       text NOT NULL,
    event_type     text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    summary        text NOT NULL,
    -- Handling order, for events that happened at the same time.
    seq            bigserial NOT NULL,
    PRIMARY KEY (regulation_id, event_id)
);
CREATE INDEX timeline_order ON timeline (regulation_id, occurred_at, seq);

-- Events about a regulation whose DraftRegistered has not arrived yet (topics are ordered
-- per regulation only within one topic); applied once it does.
CREATE TABLE deferred_events (
    id             bigserial PRIMARY KEY,
    event_id       text NOT NULL UNIQUE,
    regulation_id  text NOT NULL,
    record_key     bytea NOT NULL,
    value          bytea NOT NULL,
    headers        jsonb NOT NULL,
    deferred_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deferred_events_regulation ON deferred_events (regulation_id, id);

-- Communication tasks as scored items. targets are the regions as units in force today (or
-- 'national'); unreached, those no delivery report or evidence has reached yet.
CREATE TABLE tasks (
    task_id              uuid PRIMARY KEY,
    regulation_id        text NOT NULL,
    trigger_event_id     text NOT NULL,
    kind                 text NOT NULL,
    title                text NOT NULL,
    channel              smallint NOT NULL,
    owner_org_id         text NOT NULL,
    audience             text NOT NULL,
    targets              text[] NOT NULL,
    unreached            text[] NOT NULL,
    due_at               timestamptz NOT NULL,
    created_at           timestamptz NOT NULL,
    status               smallint NOT NULL,
    goes_first           boolean NOT NULL,
    completed_at         timestamptz,
    late                 boolean NOT NULL DEFAULT false,
    evidence_reach       bigint NOT NULL DEFAULT 0,
    overdue_at           timestamptz,
    escalated_to_org_id  text
);
CREATE INDEX tasks_regulation ON tasks (regulation_id, channel);
CREATE INDEX tasks_trigger ON tasks (trigger_event_id);
-- The overdue list (found overdue, neither completed nor cancelled since), oldest due first.
CREATE INDEX tasks_overdue ON tasks (due_at) WHERE overdue_at IS NOT NULL AND status NOT IN (5, 7);

CREATE TABLE consultations (
    regulation_id    text NOT NULL,
    consultation_id  text NOT NULL,
    opens_at         timestamptz NOT NULL,
    closes_at        timestamptz,
    closed_at        timestamptz,
    PRIMARY KEY (regulation_id, consultation_id)
);

-- Comments as scored items; no personal data (the pseudonym is not kept).
CREATE TABLE comments (
    regulation_id     text NOT NULL,
    comment_id        text NOT NULL,
    consultation_id   text NOT NULL,
    campaign_id       text NOT NULL,
    province_code     text NOT NULL,
    stakeholder_type  smallint NOT NULL,
    article_ref       text NOT NULL,
    received_at       timestamptz NOT NULL,
    answered_at       timestamptz,
    owed              boolean NOT NULL,
    PRIMARY KEY (regulation_id, comment_id)
);
CREATE INDEX comments_consultation ON comments (regulation_id, consultation_id);
CREATE INDEX comments_campaign ON comments (regulation_id, campaign_id) WHERE campaign_id <> '';

-- Survey results of the know → benefit funnel; a resent result replaces the first.
CREATE TABLE survey_results (
    regulation_id  text NOT NULL,
    survey_id      text NOT NULL,
    region_id      text NOT NULL,
    stage          smallint NOT NULL,
    respondents    bigint NOT NULL,
    positive       bigint NOT NULL,
    recorded_at    timestamptz NOT NULL,
    PRIMARY KEY (regulation_id, survey_id, region_id, stage)
);

-- Misinformation alerts this service raised (alert_id = the event's ce_id, which the rebuttal
-- tasks carry as trigger_event_id), and the rebuttal that answered each.
CREATE TABLE alerts (
    alert_id          text PRIMARY KEY,
    regulation_id     text NOT NULL,
    claim             text NOT NULL,
    source            text NOT NULL,
    region_id         text NOT NULL,
    observed_rate     double precision NOT NULL,
    baseline_rate     double precision NOT NULL,
    window_start      timestamptz NOT NULL,
    raised_at         timestamptz NOT NULL,
    rebuttal_task_id  text,
    rebuttal_due_at   timestamptz,
    rebutted_at       timestamptz,
    missed            boolean NOT NULL DEFAULT false
);
CREATE INDEX alerts_regulation ON alerts (regulation_id, raised_at);

-- One surge detector per regulation (services/evaluation/surge.py), as JSON.
CREATE TABLE surge_detectors (
    regulation_id  text PRIMARY KEY,
    state          jsonb NOT NULL
);

-- Pre-aggregated scorecard counters per subject and month, kept up to date on every scored
-- change so that scorecards and rankings read a few hundred rows however many tasks there
-- are. unit_id is the id as recorded (a 2008 province code, a merged ministry): reports map it
-- to the unit in force on their date. Counter names: services/evaluation/scoring.py.
CREATE TABLE score_counters (
    subject_kind          smallint NOT NULL,
    month                 date NOT NULL,
    unit_id               text NOT NULL,
    tasks                 bigint NOT NULL DEFAULT 0,
    tasks_on_time         bigint NOT NULL DEFAULT 0,
    tasks_late            bigint NOT NULL DEFAULT 0,
    tasks_overdue         bigint NOT NULL DEFAULT 0,
    goes_first_met        bigint NOT NULL DEFAULT 0,
    goes_first_missed     bigint NOT NULL DEFAULT 0,
    coverage_targets      bigint NOT NULL DEFAULT 0,
    coverage_reached      bigint NOT NULL DEFAULT 0,
    comments              bigint NOT NULL DEFAULT 0,
    comments_owed         bigint NOT NULL DEFAULT 0,
    comments_answered     bigint NOT NULL DEFAULT 0,
    answer_seconds        bigint NOT NULL DEFAULT 0,
    survey_respondents    bigint NOT NULL DEFAULT 0,
    survey_positive       bigint NOT NULL DEFAULT 0,
    alerts                bigint NOT NULL DEFAULT 0,
    alerts_on_time        bigint NOT NULL DEFAULT 0,
    alerts_late           bigint NOT NULL DEFAULT 0,
    alerts_missed         bigint NOT NULL DEFAULT 0,
    alerts_rebutted       bigint NOT NULL DEFAULT 0,
    rebuttal_seconds      bigint NOT NULL DEFAULT 0,
    lost_items            bigint NOT NULL DEFAULT 0,
    -- Not yet announced with ScorecardUpdated, and the regulation that changed it last.
    changed               boolean NOT NULL DEFAULT true,
    changed_by_regulation text NOT NULL,
    PRIMARY KEY (subject_kind, month, unit_id)
);
CREATE INDEX score_counters_changed ON score_counters (subject_kind, month, unit_id) WHERE changed;

-- Every item currently costing a subject points, one row per item and component: the lost
-- points behind a score. Listed per (unit, month, component) largest first, a bounded scan.
CREATE TABLE lost_items (
    item_key       text NOT NULL,
    component      text NOT NULL,
    subject_kind   smallint NOT NULL,
    unit_id        text NOT NULL,
    month          date NOT NULL,
    severity       real NOT NULL,
    at             timestamptz NOT NULL,
    regulation_id  text NOT NULL,
    task_id        uuid,
    item_id        text NOT NULL,
    owner_org_id   text NOT NULL,
    reason         text NOT NULL,
    PRIMARY KEY (item_key, component, subject_kind)
);
CREATE INDEX lost_items_listing
    ON lost_items (subject_kind, unit_id, month, component, severity DESC, at);

-- Delivery reports summed per regulation, region (as reported), channel and day (Vietnam
-- time), written by the batch aggregator (services/evaluation/delivery.py).
CREATE TABLE delivery_totals (
    regulation_id  text NOT NULL,
    region_id      text NOT NULL,
    channel        smallint NOT NULL,
    day            date NOT NULL,
    reports        bigint NOT NULL,
    reach          bigint NOT NULL,
    PRIMARY KEY (regulation_id, region_id, channel, day)
);
CREATE INDEX delivery_totals_region ON delivery_totals (region_id, day);

-- (regulation, region as the unit in force today or 'national', channel) that some delivery
-- report reached: what coverage checks targets against.
CREATE TABLE reached (
    regulation_id  text NOT NULL,
    region_id      text NOT NULL,
    channel        smallint NOT NULL,
    first_day      date NOT NULL,
    PRIMARY KEY (regulation_id, channel, region_id)
);

-- The next offset of policy.delivery-reports.v1 to aggregate, per partition, committed in the
-- transaction that adds the reports up: exactly-once without a per-event inbox.
CREATE TABLE delivery_offsets (
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
