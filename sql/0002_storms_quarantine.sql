-- 0002: storm counters, storms and the quarantine.
--
-- Counters: each filter instance adds up what it saw in memory and writes one row per mailbox
-- and time bucket a few times a second (never a row update per message), so 1,000 bounces a
-- second at one mailbox cost a handful of statements. Every instance reads the sums back:
-- they all see the same counts and the same open storm.

CREATE TABLE ndr_counts (
    mailbox       text        NOT NULL,  -- envelope recipient, lower case
    bucket        timestamptz NOT NULL,  -- start of a storm_bucket_seconds slice
    verified      bigint      NOT NULL DEFAULT 0,
    forged        bigint      NOT NULL DEFAULT 0,
    unverifiable  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox, bucket)
);
CREATE INDEX ndr_counts_bucket ON ndr_counts (bucket);  -- expiry of old buckets

CREATE TABLE storms (
    id            bigserial   PRIMARY KEY,
    mailbox       text        NOT NULL,
    started_at    timestamptz NOT NULL,
    quiet_since   timestamptz,           -- since when the window count is under the exit threshold
    ended_at      timestamptz,           -- NULL while the storm lasts
    verified      bigint      NOT NULL DEFAULT 0,  -- bounces counted while it lasted, by verdict
    forged        bigint      NOT NULL DEFAULT 0,
    unverifiable  bigint      NOT NULL DEFAULT 0,
    delivered     bigint      NOT NULL DEFAULT 0,  -- ... and by action (from the sync that opened it)
    rejected      bigint      NOT NULL DEFAULT 0,
    quarantined   bigint      NOT NULL DEFAULT 0,
    dropped       bigint      NOT NULL DEFAULT 0,  -- forged, over the mailbox's quarantine cap
    sample_subjects text[]    NOT NULL DEFAULT '{}'  -- the first few originals' subjects
);
-- At most one open storm per mailbox: two instances entering it at once make one row.
CREATE UNIQUE INDEX storms_one_open ON storms (mailbox) WHERE ended_at IS NULL;
CREATE INDEX storms_started ON storms (started_at);

CREATE TABLE storm_reporters (
    storm_id      bigint      NOT NULL REFERENCES storms (id) ON DELETE CASCADE,
    reporting_mta text        NOT NULL,
    messages      bigint      NOT NULL,
    PRIMARY KEY (storm_id, reporting_mta)
);

-- The quarantine: one row per held message and mailbox. Partitioned by day like the sent log,
-- so that expiry drops whole days.
CREATE SEQUENCE quarantine_id_seq;
CREATE TABLE quarantine (
    id            bigint      NOT NULL DEFAULT nextval('quarantine_id_seq'),
    held_day      date        NOT NULL,  -- UTC day of held_at: the partition key
    held_at       timestamptz NOT NULL,
    mailbox       text        NOT NULL,  -- the one recipient it is held for (and released to)
    sender        text        NOT NULL,  -- envelope sender ('' for <>)
    client        text        NOT NULL,  -- the remote client (XFORWARD ADDR)
    queue_id      text        NOT NULL,  -- Postfix's queue id (XFORWARD IDENT), '' if none
    dedupe_key    bigint,                -- hash of queue id and mailbox: a retried message is held once
    class         text        NOT NULL,
    verification  text        NOT NULL,
    reasons       text[]      NOT NULL,
    notes         text[]      NOT NULL,  -- "storm", "warm_up", ...
    message_ids   text[]      NOT NULL,  -- the originals it names
    reporting_mta text        NOT NULL,
    subject       text        NOT NULL,  -- the bounce's own
    original_subject text     NOT NULL,
    storm_id      bigint,                -- the storm it came in, if any
    size          integer     NOT NULL,
    message       bytea       NOT NULL,
    state         text        NOT NULL DEFAULT 'held'
                  CHECK (state IN ('held', 'releasing', 'released', 'deleted')),
    state_changed_at timestamptz NOT NULL
) PARTITION BY RANGE (held_day);
CREATE INDEX quarantine_id ON quarantine (id);
CREATE INDEX quarantine_mailbox ON quarantine (mailbox, held_at);
CREATE INDEX quarantine_dedupe ON quarantine (dedupe_key) WHERE dedupe_key IS NOT NULL;

-- What each mailbox holds, for the cap; changed once per written batch, not per message.
CREATE TABLE quarantine_mailboxes (
    mailbox          text   PRIMARY KEY,
    held_items       bigint NOT NULL DEFAULT 0,
    held_bytes       bigint NOT NULL DEFAULT 0,
    dropped_over_cap bigint NOT NULL DEFAULT 0
);

-- Every release attempt, for audit and for exactly-once delivery: an attempt is 'started'
-- before the message goes to Postfix, 'sent' just before the final dot (after that point the
-- message may be in Postfix's queue), then 'done' or 'failed'. An attempt left 'sent' by a crash
-- is never retried blindly.
CREATE TABLE quarantine_releases (
    id            bigserial   PRIMARY KEY,
    item_id       bigint      NOT NULL,
    requested_by  text        NOT NULL,  -- who (an admin's login, "digest-link", ...)
    via           text        NOT NULL,  -- how ("cli", "web", ...)
    state         text        NOT NULL CHECK (state IN ('started', 'sent', 'done', 'failed', 'superseded')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    reply         text        NOT NULL DEFAULT ''  -- the next hop's answer
);
CREATE INDEX quarantine_releases_item ON quarantine_releases (item_id);

-- Deletions are audited too.
CREATE TABLE quarantine_audit (
    id            bigserial   PRIMARY KEY,
    item_id       bigint      NOT NULL,
    action        text        NOT NULL,  -- 'delete', 'expire'
    requested_by  text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE quarantine IS
    'ndrguard: held bounces, one partition per UTC day (quarantine_YYYYMMDD)';
