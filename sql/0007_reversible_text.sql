-- 0007: key texts (mailboxes, senders, Message-IDs, queue ids, recipients) are now written with
-- a reversible escape (quarantine/src/sql_text.cpp, to_db_text): well-formed UTF-8 as it is,
-- "\\" for a backslash, \xHH for NUL, chr(31) and each byte that is not UTF-8. Before, they were
-- written verbatim (the sent log; a statement with a bad byte failed) or with each byte >= 0x80
-- replaced by '?' (the quarantine; lossy, nothing to recover). The only rows whose text changes
-- under the escape are those with a backslash: doubled here, so that they still match. No type
-- changes; the hashes (id_hash, dedupe_key) are of the raw strings and stay valid.
-- Cost: one scan of each table; only rows with a backslash (rare: quoted local parts) are written.
UPDATE sent_log SET message_id = replace(message_id, '\', '\\') WHERE strpos(message_id, '\') > 0;
UPDATE sent_log SET sender = replace(sender, '\', '\\') WHERE strpos(sender, '\') > 0;
UPDATE sent_log SET recipients = (SELECT array_agg(replace(r, '\', '\\')) FROM unnest(recipients) AS r)
WHERE strpos(array_to_string(recipients, ' '), '\') > 0;

UPDATE quarantine SET mailbox = replace(mailbox, '\', '\\'), sender = replace(sender, '\', '\\'),
       client = replace(client, '\', '\\'), queue_id = replace(queue_id, '\', '\\'),
       original_recipient = replace(original_recipient, '\', '\\'),
       message_ids = (SELECT coalesce(array_agg(replace(i, '\', '\\')), '{}') FROM unnest(message_ids) AS i)
WHERE strpos(mailbox || sender || client || queue_id || original_recipient || array_to_string(message_ids, ' '), '\') > 0;

UPDATE ndr_counts SET mailbox = replace(mailbox, '\', '\\') WHERE strpos(mailbox, '\') > 0;
UPDATE storms SET mailbox = replace(mailbox, '\', '\\') WHERE strpos(mailbox, '\') > 0;
UPDATE quarantine_mailboxes SET mailbox = replace(mailbox, '\', '\\') WHERE strpos(mailbox, '\') > 0;
UPDATE digests SET mailbox = replace(mailbox, '\', '\\') WHERE strpos(mailbox, '\') > 0;
UPDATE quarantine_releases SET requested_by = replace(requested_by, '\', '\\') WHERE strpos(requested_by, '\') > 0;
UPDATE quarantine_audit SET requested_by = replace(requested_by, '\', '\\') WHERE strpos(requested_by, '\') > 0;
