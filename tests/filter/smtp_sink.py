#!/usr/bin/env python3
"""A next hop for the end-to-end tests: accepts every message, stores it as DIR/<queue-id>.eml
with the envelope in DIR/<queue-id>.env, answers "250 2.0.0 Ok: queued as <id>".
usage: smtp_sink.py PORT DIR

A message whose connection ends before its final dot is discarded, as a real MTA does.
For crash tests: SINK_PAUSE_BEFORE_354=SECONDS delays the DATA reply (the client is stopped
before handing the message over); SINK_PAUSE_AFTER_DOT=SECONDS stores the message and then
delays its 250 (the client is stopped after the hand-over, before it hears the answer).
SINK_SMTPUTF8=1 offers SMTPUTF8; the .env file keeps the envelope commands as UTF-8."""
import socketserver
import sys
import itertools
import os
import time

PAUSE_BEFORE_354 = float(os.environ.get("SINK_PAUSE_BEFORE_354", "0"))
PAUSE_AFTER_DOT = float(os.environ.get("SINK_PAUSE_AFTER_DOT", "0"))
SMTPUTF8 = os.environ.get("SINK_SMTPUTF8", "") == "1"  # offer SMTPUTF8 in the EHLO reply

counter = itertools.count(1)


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write((text + "\r\n").encode())

    def handle(self):
        self.reply("220 sink.test ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink.test\r\n250-PIPELINING\r\n250-SIZE 100000000\r\n"
                                 b"250-8BITMIME\r\n250-DSN\r\n" + (b"250-SMTPUTF8\r\n" if SMTPUTF8 else b"") +
                                 b"250 XFORWARD NAME ADDR PROTO HELO IDENT\r\n")
            elif verb in ("HELO", "XFORWARD", "NOOP"):
                self.reply("250 2.0.0 Ok")
            elif verb == "MAIL":
                mail_from, rcpts = cmd, []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts.append(cmd)
                self.reply("250 2.1.5 Ok")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "DATA":
                time.sleep(PAUSE_BEFORE_354)
                self.reply("354 go ahead")
                data = bytearray()
                while True:
                    l = self.rfile.readline()
                    if not l:
                        return  # no final dot: nothing was handed over
                    if l in (b".\r\n", b".\n"):
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    data += l
                qid = "SINK%05d" % next(counter)
                with open(os.path.join(sys.argv[2], qid + ".eml"), "wb") as f:
                    f.write(bytes(data))
                with open(os.path.join(sys.argv[2], qid + ".env"), "w", encoding="utf-8") as f:
                    f.write(mail_from + "\n" + "\n".join(rcpts) + "\n")
                time.sleep(PAUSE_AFTER_DOT)
                self.reply("250 2.0.0 Ok: queued as " + qid)
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 unknown")


class Server(socketserver.ThreadingTCPServer):
    request_queue_size = 128  # a filter opens many next-hop connections at once
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    os.makedirs(sys.argv[2], exist_ok=True)
    with Server(("127.0.0.1", int(sys.argv[1])), Handler) as s:
        s.serve_forever()
