#!/usr/bin/env python3
"""A next hop that misbehaves as real ones do, for the end-to-end tests of reinjection.
usage: next_hop.py PORT DIR [IDLE_CLOSE_SECONDS]

Stores each accepted message as DIR/<queue-id>.eml (envelope in .env), like smtp_sink.py, and
  - answers RCPT for a recipient starting with "unknown" with 550 5.1.1 (as Postfix does for a
    user it does not know), and a message whose Subject is "reject-at-dot" with 554 at the dot;
  - with IDLE_CLOSE_SECONDS, closes a connection silent that long with a 421, as Postfix's
    smtpd does at smtpd_timeout;
  - writes the number of open connections to DIR/connections at each change."""
import itertools
import os
import socket
import socketserver
import sys
import threading

counter = itertools.count(1)
IDLE_CLOSE = float(sys.argv[3]) if len(sys.argv) > 3 else 0
open_connections = 0
lock = threading.Lock()


def count(delta):
    global open_connections
    with lock:
        open_connections += delta
        tmp = os.path.join(sys.argv[2], "connections.tmp")
        with open(tmp, "w") as f:
            f.write("%d\n" % open_connections)
        os.replace(tmp, os.path.join(sys.argv[2], "connections"))


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write((text + "\r\n").encode())

    def line(self):
        try:
            return self.rfile.readline()
        except socket.timeout:
            self.reply("421 4.4.2 hop.test Error: timeout exceeded")
            return b""

    def handle(self):
        count(+1)
        try:
            if IDLE_CLOSE:
                self.connection.settimeout(IDLE_CLOSE)
            self.session()
        except OSError:
            pass
        finally:
            count(-1)

    def session(self):
        self.reply("220 hop.test ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = self.line()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-hop.test\r\n250-PIPELINING\r\n250-SIZE 100000000\r\n"
                                 b"250-8BITMIME\r\n250-DSN\r\n250 XFORWARD NAME ADDR PROTO HELO IDENT\r\n")
            elif verb in ("HELO", "XFORWARD", "NOOP"):
                self.reply("250 2.0.0 Ok")
            elif verb == "MAIL":
                mail_from, rcpts = cmd, []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                if cmd[8:].lstrip("<").lower().startswith("unknown"):
                    self.reply("550 5.1.1 <%s>: Recipient address rejected: User unknown" % cmd[8:].strip("<>"))
                else:
                    rcpts.append(cmd)
                    self.reply("250 2.1.5 Ok")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "DATA":
                if not rcpts:
                    self.reply("554 5.5.1 Error: no valid recipients")
                    continue
                self.reply("354 go ahead")
                data = bytearray()
                while True:
                    l = self.rfile.readline()
                    if not l:
                        return
                    if l in (b".\r\n", b".\n"):
                        break
                    data += l[1:] if l.startswith(b".") else l
                if b"\nSubject: reject-at-dot\r\n" in b"\n" + bytes(data):
                    self.reply("554 5.7.1 Error: content rejected")
                    continue
                qid = "HOP%05d" % next(counter)
                with open(os.path.join(sys.argv[2], qid + ".eml"), "wb") as f:
                    f.write(bytes(data))
                with open(os.path.join(sys.argv[2], qid + ".env"), "w") as f:
                    f.write(mail_from + "\n" + "\n".join(rcpts) + "\n")
                self.reply("250 2.0.0 Ok: queued as " + qid)
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 unknown")


class Server(socketserver.ThreadingTCPServer):
    request_queue_size = 128
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    os.makedirs(sys.argv[2], exist_ok=True)
    count(0)
    with Server(("127.0.0.1", int(sys.argv[1])), Handler) as s:
        s.serve_forever()
