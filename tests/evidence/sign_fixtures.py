#!/usr/bin/python3
"""Signs the DKIM test messages with real signers (Debian's python3-dkim, dkimpy; OpenDKIM's) and a key
pair made now by openssl: nothing signed is committed. Writes into OUTDIR:
  ours.pub.pem, ours.txt (the key as PEM and as a DNS TXT record's text), other.pub.pem,
  relaxed.eml, simple.eml, length.eml, missing.eml, other.eml (CRLF line endings), and
  opendkim.eml, signed by OpenDKIM's opendkim-testmsg.
dkim_test (the C++ side) then verifies them with ndrguard's evidence library."""
import subprocess
import sys
from pathlib import Path

import dkim

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)


def keypair(name):
    priv = out / f"{name}.key.pem"
    pub = out / f"{name}.pub.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(priv), "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", str(priv), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return priv.read_bytes(), pub.read_text()


ours_key, ours_pub = keypair("ours")
other_key, _ = keypair("other")
b64 = "".join(l for l in ours_pub.splitlines() if not l.startswith("-----"))
(out / "ours.txt").write_text(f'sel1._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; " "p={b64}" )\n')

HEADERS = (b"Received: from submit.example.org (submit.example.org [192.0.2.10])\r\n"
           b"\tby mx1.example.org (Postfix) with ESMTPSA id 4AB12\r\n"
           b"Received: from [198.51.100.7] by submit.example.org with ESMTPSA id 7CD34\r\n"
           b"X-Topic: figures\r\n"
           b"X-Topic: quarterly\r\n"
           b"From: Alice Example <alice@example.org>\r\n"
           b"To: bob@remote.test\r\n"
           b"Subject: Quarterly figures for review\r\n"
           b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
           b"Message-ID: <q4-figures.1@example.org>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=us-ascii\r\n")
BODY = b"Hello Bob,\r\n\r\nthe figures are attached.\r\n\r\nAlice\r\n"
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"x-topic", b"x-topic", b"mime-version",
          b"content-type"]


def sign(name, canon, domain=b"example.org", key=ours_key, selector=b"sel1", headers=SIGNED, length=False):
    msg = HEADERS + b"\r\n" + BODY
    sig = dkim.sign(msg, selector, domain, key, canonicalize=(canon, canon), include_headers=headers, length=length)
    (out / name).write_bytes(sig + msg)


sign("relaxed.eml", b"relaxed")
sign("simple.eml", b"simple")
sign("length.eml", b"relaxed", length=True)
sign("missing.eml", b"relaxed", headers=SIGNED + [b"reply-to"])  # listed in h=, not in the message
sign("other.eml", b"relaxed", domain=b"other.test", key=other_key)

# The second signer: OpenDKIM's own (opendkim-tools; the library the milter signs with), which
# signs with its defaults: rsa-sha1, relaxed/simple, Received lines included.
signed = subprocess.run(["/usr/sbin/opendkim-testmsg", "-C", "-d", "example.org", "-s", "sel1",
                         "-k", str(out / "ours.key.pem")], input=HEADERS + b"\r\n" + BODY, check=True,
                        capture_output=True).stdout
if not signed.startswith(b"DKIM-Signature:"):
    sys.exit("opendkim-testmsg did not sign")
(out / "opendkim.eml").write_bytes(signed)
print("signed into", out)
