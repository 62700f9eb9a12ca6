-- 0003: digests, and the original's recipient for them.
--
-- Each held item is reported in at most one digest. A pass claims a mailbox's unreported items
-- by writing its digest's id on them (a row lock: a second pass at the same time finds them
-- claimed and skips them), builds the mail, marks the digest 'sending' just before the final dot
-- and 'sent' after the 250. A pass that crashed while 'building' left nothing in Postfix's queue:
-- its items are claimed again once the lease has passed. One that crashed after 'sending' may
-- have delivered: its items are never reported again (never two digests for the same items).

CREATE TABLE digests (
    id            bigserial   PRIMARY KEY,
    mailbox       text        NOT NULL,
    state         text        NOT NULL CHECK (state IN ('building', 'sending', 'sent', 'failed', 'abandoned')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    items         integer     NOT NULL DEFAULT 0,
    reply         text        NOT NULL DEFAULT ''  -- the next hop's answer, or why it failed
);
CREATE INDEX digests_mailbox ON digests (mailbox, started_at);
CREATE INDEX digests_building ON digests (started_at) WHERE state = 'building';

ALTER TABLE quarantine ADD COLUMN digest_id bigint;  -- the digest that reported it
ALTER TABLE quarantine ADD COLUMN original_recipient text NOT NULL DEFAULT '';  -- whom the returned message was for
CREATE INDEX quarantine_unreported ON quarantine (mailbox) WHERE digest_id IS NULL AND state = 'held';
CREATE INDEX quarantine_digest ON quarantine (digest_id) WHERE digest_id IS NOT NULL;
