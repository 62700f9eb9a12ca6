-- 0008: the evidence each held bounce's verdict rests on (issue 15: filter/verdict.hpp's tags,
-- e.g. {sent_log.missing,trace.our_relay}), shown with the item and counted per tag. Rows held
-- before have none. Cost: a catalogue change only (a constant default is not written to rows).
ALTER TABLE quarantine ADD COLUMN evidence text[] NOT NULL DEFAULT '{}';
