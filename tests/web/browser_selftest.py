"""Self-test of browser.py against a tiny local HTTP server.

Usage: browser_selftest.py OUTDIR   (OUTDIR receives the screenshot)
Exit 0 if all checks pass, 1 on any failure, 77 if chromium/chromedriver is missing.
"""
import http.server
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser import Browser, BrowserUnavailable  # noqa: E402

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Held message</title></head>
<body><h1>Held bounce</h1>
<p>One message is held.</p>
<form method="post" action="/done"><button type="submit" id="go">Release</button></form>
</body></html>"""
DONE = b"""<!doctype html><html><head><meta name="viewport" content="width=device-width">
<title>Done</title></head>
<body><p id="msg">released</p></body></html>"""

posts = []


class Handler(http.server.BaseHTTPRequestHandler):
    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(200, PAGE) if self.path == "/" else self._send(404, b"not found")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/done":
            posts.append(self.path)
            self._send(200, DONE)
        else:
            self._send(404, b"not found")

    def log_message(self, *args):
        pass


failures = 0


def check(name, ok, detail=""):
    global failures
    print(("ok - " if ok else "FAIL - ") + name + ("" if ok else ": %r" % (detail,)), flush=True)
    failures += not ok


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: browser_selftest.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        with Browser() as b:
            b.get(base + "/")
            check("heading text", b.text("h1") == "Held bounce", b.text("h1"))
            check("title", b.title() == "Held message", b.title())
            check("GET caused no POST", len(posts) == 0, posts)
            check("button attribute", b.attribute("#go", "type") == "submit")
            check("viewport is 412x915",
                  b.execute("return [window.innerWidth, window.innerHeight]") == [412, 915],
                  b.execute("return [window.innerWidth, window.innerHeight]"))
            b.click("#go")
            check("released page text", b.text("body") == "released", b.text("body"))
            check("URL after click", b.current_url() == base + "/done", b.current_url())
            check("exactly one POST", len(posts) == 1, posts)
            shot = b.screenshot(os.path.join(outdir, "browser_selftest.png"))
            with open(shot, "rb") as f:
                png = f.read()
            check("screenshot is a PNG > 1 KB",
                  png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1024, len(png))
            try:
                b.find("#missing")
                check("missing element raises", False, "no exception")
            except Exception as e:
                check("missing element raises", "no such element" in str(e)
                      and "#missing" in str(e), str(e))
    except BrowserUnavailable as e:
        print("skip - %s" % e)
        return 77
    finally:
        server.shutdown()
        server.server_close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
