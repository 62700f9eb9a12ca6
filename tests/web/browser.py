"""Drive Debian's headless Chromium through chromedriver (W3C WebDriver), standard library only.

    with Browser() as b:                 # phone-size viewport, 412x915
        b.get("http://127.0.0.1:8080/")
        b.click("#go")                   # waits for the page the click loads
        print(b.text("h1"))

Binaries: /usr/bin/chromium and /usr/bin/chromedriver (Debian packages chromium, chromium-driver),
overridable with NDRGUARD_CHROMIUM and NDRGUARD_CHROMEDRIVER. If either is missing, entering the
Browser raises BrowserUnavailable, which a test turns into a skip (exit code 77).

No process is left behind: on exit the session is deleted, chromedriver stopped, and whatever is
left (found by chromedriver's process group and by the temp dir in its command line) is killed
before the temp dir is removed. A watchdog process does the same if the test process dies without
cleaning up (SIGKILL, SIGTERM).
"""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEFAULT_CHROMIUM = "/usr/bin/chromium"
DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # W3C web element identifier

# Before a click: flag the document when it starts to leave (form submit, link, location=...).
_ARM = """window.__ndrguardLeaving = false;
const leave = () => { window.__ndrguardLeaving = true; };
addEventListener("beforeunload", leave);
if (window.navigation) navigation.addEventListener("navigate",
    e => { if (!e.destination.sameDocument) leave(); });"""
_STATE = """return [window.__ndrguardLeaving === undefined ? "new"
                 : window.__ndrguardLeaving ? "leaving" : "same", document.readyState];"""
_NET_ERROR = """if (!location.href.startsWith("chrome-error:")) return null;
const code = document.querySelector(".error-code");
return code ? code.textContent : "Chrome error page";"""


class BrowserUnavailable(Exception):
    """chromium or chromedriver is not installed (callers skip the test)."""


class WebDriverError(Exception):
    """A WebDriver command failed; .error is the W3C error code (e.g. 'no such element')."""

    def __init__(self, command, error, message):
        self.command, self.error, self.message = command, error, message
        if not message.startswith(error):  # chromedriver's messages usually start with the error
            message = "%s: %s" % (error, message)
        super().__init__("WebDriver %s: %s" % (command, message))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----- finding and killing what chromedriver started ---------------------------------------------

def _stat(pid):
    """(state, pgid, start time) of a process, or None if it is gone."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[2]), fields[19]


def _find_ours(tmp, pgids, seen):
    """Add to seen {pid: start time} the processes in pgids or naming tmp in their command line
    (chromium's crash handlers leave the process group, but name tmp)."""
    marker = tmp.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        stat = _stat(entry)
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if stat and (stat[1] in pgids or marker in cmdline):
            seen.setdefault(int(entry), stat[2])


def _kill_ours(tmp, pgids, seen, timeout=10):
    """SIGKILL our processes; wait (bounded) until all are gone, zombies reaped by init included."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _find_ours(tmp, pgids, seen)
        for pid, start in list(seen.items()):
            stat = _stat(pid)
            if stat is None or stat[2] != start:
                del seen[pid]  # gone (or the pid was reused)
            elif stat[0] != b"Z":  # a zombie only waits for its parent (often init) to reap it
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if not seen:
            return
        time.sleep(0.05)


def _watchdog():
    """`python3 browser.py --watchdog`: stdin gives the temp dir, then chromedriver pgids; at EOF
    (the test process ended, however) clean up unless Browser.close() already did."""
    tmp = sys.stdin.readline().strip()
    pgids = [int(line) for line in sys.stdin if line.strip()]
    if tmp and os.path.isdir(tmp):
        _kill_ours(tmp, pgids, {})
        shutil.rmtree(tmp, ignore_errors=True)


# ----- the browser -------------------------------------------------------------------------------

class Browser:
    """A headless Chromium session; use as a context manager."""

    def __init__(self, width=412, height=915, mobile=True, chromium=None, chromedriver=None,
                 startup_timeout=30, page_load_timeout=30):
        """width x height is the CSS viewport; mobile=True emulates a phone (viewport meta honoured,
        touch events): desktop Chrome cannot make a window narrower than 500 px."""
        self.width, self.height, self.mobile = width, height, mobile
        self.chromium = chromium or os.environ.get("NDRGUARD_CHROMIUM") or DEFAULT_CHROMIUM
        self.chromedriver = (chromedriver or os.environ.get("NDRGUARD_CHROMEDRIVER")
                             or DEFAULT_CHROMEDRIVER)
        self.startup_timeout = startup_timeout
        self.page_load_timeout = page_load_timeout
        self._proc = self._tmp = self._session = self._port = self._log = self._watch = None
        self._pgids = []  # process groups of the chromedriver runs
        self._seen = {}   # pid -> start time of each process of ours seen so far

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _start(self):
        for path in (self.chromium, self.chromedriver):
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise BrowserUnavailable("not installed: %s (apt-get install chromium "
                                         "chromium-driver)" % path)
        self._tmp = tempfile.mkdtemp(prefix="ndrguard-browser-")
        self._watch = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--watchdog"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._tell_watchdog(self._tmp)
        # Chromium writes crash reports, caches and scratch dirs under $HOME, XDG dirs and
        # $TMPDIR: keep them all in the temp dir.
        home, scratch = os.path.join(self._tmp, "home"), os.path.join(self._tmp, "tmp")
        os.mkdir(home)
        os.mkdir(scratch)
        env = dict(os.environ, HOME=home, TMPDIR=scratch,
                   XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"))
        self._log = os.path.join(self._tmp, "chromedriver.log")
        for _attempt in range(3):  # the free port may be taken between probing and binding
            self._port = _free_port()
            with open(self._log, "ab") as log:
                self._proc = subprocess.Popen(
                    [self.chromedriver, "--port=%d" % self._port, "--enable-chrome-logs"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True)
            self._pgids.append(self._proc.pid)  # start_new_session: it leads its own group
            self._tell_watchdog(str(self._proc.pid))
            if self._wait_ready():
                break
            code = self._proc.poll()
            self._stop_driver()
            if code is None:  # alive but never ready: retrying would not help
                raise RuntimeError("chromedriver not ready after %ss; log:\n%s"
                                   % (self.startup_timeout, self._log_tail()))
        else:
            raise RuntimeError("chromedriver %s exited with status %s; log:\n%s"
                               % (self.chromedriver, code, self._log_tail()))
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                # Debian's wrapper means to add this when /dev/shm is small, but its test breaks
                # when /dev/shm is mounted twice; a small /dev/shm crashes renderers.
                "--disable-dev-shm-usage",
                "--user-data-dir=" + os.path.join(self._tmp, "profile"),
                "--window-size=%d,%d" % (self.width, self.height)]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "pageLoadStrategy": "normal",
            "timeouts": {"implicit": 0, "pageLoad": int(self.page_load_timeout * 1000),
                         "script": int(self.page_load_timeout * 1000)},
            "goog:chromeOptions": {"binary": self.chromium, "args": args, "mobileEmulation": {
                "deviceMetrics": {"width": self.width, "height": self.height, "pixelRatio": 1.0,
                                  "mobile": self.mobile, "touch": self.mobile}}}}}}
        try:
            value = self._call("POST", "/session", caps, "new session",
                               timeout=self.startup_timeout + 30)
        except WebDriverError as e:
            e.args = (e.args[0] + "\nchromedriver/chromium log (tail):\n" + self._log_tail(),)
            raise
        self._session = value["sessionId"]
        _find_ours(self._tmp, self._pgids, self._seen)  # note the crash handlers while they live

    def _tell_watchdog(self, line):
        self._watch.stdin.write(line.encode() + b"\n")
        self._watch.stdin.flush()

    def _wait_ready(self):
        """Poll /status until ready; False if chromedriver exited or the wait ran out."""
        end = time.monotonic() + self.startup_timeout
        while time.monotonic() < end:
            if self._proc.poll() is not None:
                return False
            try:
                if self._call("GET", "/status", None, "status", timeout=2).get("ready"):
                    return True
            except (OSError, http.client.HTTPException, WebDriverError, ValueError):
                pass
            time.sleep(0.1)
        return False

    def log(self):
        """chromedriver's output, chromium's stderr included (for diagnosing failures)."""
        try:
            with open(self._log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return "(no log)"

    def _log_tail(self, n=3000):
        return self.log()[-n:]

    def close(self):
        """Delete the session, stop chromedriver, kill leftovers, remove the temp dir."""
        if self._tmp:
            _find_ours(self._tmp, self._pgids, self._seen)
        if self._session:
            try:
                self._call("DELETE", "/session/" + self._session, None, "delete session",
                           timeout=15)
            except Exception:
                pass
            self._session = None
        if self._proc:
            self._stop_driver()
        if self._tmp:
            _kill_ours(self._tmp, self._pgids, self._seen)
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self._watch:
            watch, self._watch = self._watch, None
            try:
                watch.stdin.close()
                watch.wait(15)
            except Exception:
                watch.kill()
                watch.wait()

    def _stop_driver(self):
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ----- WebDriver protocol --------------------------------------------------------------------

    def _call(self, method, path, body, what, timeout=None):
        """One WebDriver HTTP command; returns its 'value' or raises WebDriverError."""
        conn = http.client.HTTPConnection("127.0.0.1", self._port,
                                          timeout=timeout or self.page_load_timeout + 30)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json; charset=utf-8"} if data else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            value = json.loads(raw or b"null")["value"]
        except (ValueError, KeyError, TypeError):
            raise WebDriverError(what, "HTTP %d" % resp.status,
                                 raw[:500].decode("utf-8", "replace")) from None
        if resp.status >= 400:
            value = value if isinstance(value, dict) else {}
            raise WebDriverError(what, value.get("error") or "HTTP %d" % resp.status,
                                 (value.get("message") or "").split("\n")[0])
        return value

    def _cmd(self, method, path, body=None, what=None):
        if not self._session:
            raise RuntimeError("Browser is not started (use it as a context manager)")
        return self._call(method, "/session/%s%s" % (self._session, path), body,
                          what or "%s %s" % (method, path))

    # ----- public API ----------------------------------------------------------------------------

    def get(self, url):
        """Load url and wait for it; raises on a network error (chromedriver would show Chrome's
        error page and report success)."""
        self._cmd("POST", "/url", {"url": url}, "get(%r)" % url)
        failed = self._cmd("POST", "/execute/sync", {"script": _NET_ERROR, "args": []},
                           "get(%r)" % url)
        if failed:
            raise WebDriverError("get(%r)" % url, "navigation failed", failed)

    def current_url(self):
        return self._cmd("GET", "/url", what="current_url()")

    def title(self):
        return self._cmd("GET", "/title", what="title()")

    def page_source(self):
        return self._cmd("GET", "/source", what="page_source()")

    def find(self, css):
        """Element id of the first match; WebDriverError 'no such element' if none."""
        value = self._cmd("POST", "/element", {"using": "css selector", "value": css},
                          "find(%r)" % css)
        return value[ELEMENT_KEY]

    def find_all(self, css):
        """Element ids of all matches (possibly none)."""
        value = self._cmd("POST", "/elements", {"using": "css selector", "value": css},
                          "find_all(%r)" % css)
        return [v[ELEMENT_KEY] for v in value]

    def text(self, css="body"):
        """Visible (rendered) text of the first element matching css."""
        return self._cmd("GET", "/element/%s/text" % self.find(css), what="text(%r)" % css)

    def attribute(self, css, name):
        """Attribute name of the first match, or None if it has none."""
        return self._cmd("GET", "/element/%s/attribute/%s" % (self.find(css), name),
                         what="attribute(%r, %r)" % (css, name))

    def click(self, css, settle=0.3):
        """Click the first match; if that starts a navigation, wait until the new page has loaded.

        chromedriver's own click often returns before a form submission's page arrives, so this
        watches the document: a navigation must begin within `settle` seconds to be waited for."""
        what = "click(%r)" % css
        element = self.find(css)
        self._cmd("POST", "/execute/sync", {"script": _ARM, "args": []}, what)
        self._cmd("POST", "/element/%s/click" % element, {}, what)
        start, state = time.monotonic(), None
        while time.monotonic() - start < self.page_load_timeout:
            try:
                state = self._cmd("POST", "/execute/sync", {"script": _STATE, "args": []}, what)
            except WebDriverError:
                state = None  # the page is being swapped; ask again
            if state == ["new", "complete"]:
                return
            if state and state[0] == "same" and time.monotonic() - start >= settle:
                return
            time.sleep(0.05)
        raise WebDriverError(what, "timeout", "no page loaded %ss after the click (last state %r)"
                             % (self.page_load_timeout, state))

    def execute(self, script, *args):
        """Run a JavaScript function body (`return ...`) with args; returns its result."""
        return self._cmd("POST", "/execute/sync", {"script": script, "args": list(args)},
                         "execute(%r)" % script[:60])

    def screenshot(self, path):
        """Save a PNG of the viewport to path; returns path."""
        png = base64.b64decode(self._cmd("GET", "/screenshot", what="screenshot(%r)" % path))
        with open(path, "wb") as f:
            f.write(png)
        return path


if __name__ == "__main__" and sys.argv[1:] == ["--watchdog"]:
    _watchdog()
