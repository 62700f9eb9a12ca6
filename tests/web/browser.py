"""Drive Debian's headless Chromium through chromedriver (W3C WebDriver), standard library only.

    with Browser() as b:                 # phone-size viewport, 412x915
        b.get("http://127.0.0.1:8080/")
        b.click("#go")
        print(b.text("h1"))

Binaries: /usr/bin/chromium and /usr/bin/chromedriver (Debian packages chromium, chromium-driver),
overridable with NDRGUARD_CHROMIUM and NDRGUARD_CHROMEDRIVER. If either is missing, entering the
Browser raises BrowserUnavailable, which a test turns into a skip (exit code 77).

Every process is cleaned up on exit, even after an error: the session is deleted, chromedriver is
stopped, and any chromium process left over (found by process group and by the temp dir in its
command line) is killed before the temp dir is removed.
"""
import base64
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
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
_NET_ERROR = """if (!location.href.startsWith("chrome-error:")) return null;
const code = document.querySelector(".error-code");
return code ? code.textContent : "Chrome error page";"""
_STATE = """return [window.__ndrguardLeaving === undefined ? "new"
                 : window.__ndrguardLeaving ? "leaving" : "same", document.readyState];"""


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


def _die_with_parent():
    """preexec_fn: chromedriver gets SIGTERM if our process dies (it then closes chromium)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Browser:
    """A headless Chromium session; use as a context manager."""

    def __init__(self, width=412, height=915, mobile=True, chromium=None, chromedriver=None,
                 startup_timeout=30, page_load_timeout=30):
        """width x height is the CSS viewport; mobile=True emulates a phone (viewport meta honoured,
        touch events), as desktop Chrome cannot make a window narrower than 500 px."""
        self.width, self.height, self.mobile = width, height, mobile
        self.chromium = chromium or os.environ.get("NDRGUARD_CHROMIUM") or DEFAULT_CHROMIUM
        self.chromedriver = (chromedriver or os.environ.get("NDRGUARD_CHROMEDRIVER")
                             or DEFAULT_CHROMEDRIVER)
        self.startup_timeout = startup_timeout
        self.page_load_timeout = page_load_timeout
        self._proc = self._tmp = self._session = self._port = self._log = None
        self._pgids = []  # process groups of chromedriver runs, swept on close()
        self._seen = {}   # pid -> start time of every chromium-side process seen

    # ----- lifecycle -------------------------------------------------------------------------

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
        home = os.path.join(self._tmp, "home")
        os.mkdir(home)
        # Chromium writes crash reports and caches under $HOME / XDG dirs: keep them in the temp dir.
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"))
        self._log = os.path.join(self._tmp, "chromedriver.log")
        for _attempt in range(3):  # the free port may be taken between probing and binding
            self._port = _free_port()
            with open(self._log, "ab") as log:
                self._proc = subprocess.Popen(
                    [self.chromedriver, "--port=%d" % self._port, "--enable-chrome-logs"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True, preexec_fn=_die_with_parent)
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
                # when /dev/shm is mounted twice; small /dev/shm crashes renderers.
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
        self._sweep()  # note the crash handlers now: they detach from chromium's process group

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
            self._sweep()
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
            self._kill_leftovers()
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _stop_driver(self):
        proc, self._proc = self._proc, None
        self._pgids.append(proc.pid)  # start_new_session: chromedriver leads its own group
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @staticmethod
    def _stat(pid):
        """(state, pgid, start time) of a process, or None if it is gone."""
        try:
            with open("/proc/%s/stat" % pid, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            return None
        return fields[0], int(fields[2]), fields[19]

    def _sweep(self):
        """Record processes in chromedriver's process groups or naming our temp dir."""
        marker = self._tmp.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            stat = self._stat(entry)
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if stat and (stat[1] in self._pgids or marker in cmdline):
                self._seen.setdefault(int(entry), stat[2])

    def _kill_leftovers(self):
        """SIGKILL what is still alive; wait (10 s at most) until every one is gone and reaped."""
        end = time.monotonic() + 10
        while time.monotonic() < end:
            self._sweep()
            alive = False
            for pid, start in list(self._seen.items()):
                stat = self._stat(pid)
                if stat is None or stat[2] != start:
                    del self._seen[pid]  # gone (or the pid was reused)
                    continue
                alive = True
                if stat[0] != b"Z":  # a zombie just waits for its parent (often init) to reap it
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            if not alive:
                return
            time.sleep(0.05)

    # ----- WebDriver protocol ----------------------------------------------------------------

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
            raise WebDriverError(what, "HTTP %d" % resp.status, raw[:500].decode("utf-8", "replace"))
        if resp.status >= 400 or (isinstance(value, dict) and "error" in value
                                  and "message" in value):
            value = value if isinstance(value, dict) else {}
            raise WebDriverError(what, value.get("error", "HTTP %d" % resp.status),
                                 (value.get("message") or "").split("\n")[0])
        return value

    def _cmd(self, method, path, body=None, what=None):
        if not self._session:
            raise RuntimeError("Browser is not started (use it as a context manager)")
        return self._call(method, "/session/%s%s" % (self._session, path), body,
                          what or "%s %s" % (method, path))

    # ----- public API ------------------------------------------------------------------------

    def get(self, url):
        """Navigate to url and wait for the page to load; raises if Chrome shows its error page
        (connection refused, ...), which chromedriver itself reports as a success."""
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
        """Element ids of all matches (possibly empty)."""
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
        self._cmd("POST", "/execute/sync", {"script": _ARM, "args": []}, what + " arming")
        self._cmd("POST", "/element/%s/click" % element, {}, what)
        start = time.monotonic()
        state = None
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
        """Run a JavaScript function body synchronously; returns its return value."""
        return self._cmd("POST", "/execute/sync", {"script": script, "args": list(args)},
                         "execute(%r)" % script[:60])

    def screenshot(self, path):
        """Save a PNG of the viewport to path; returns path."""
        png = base64.b64decode(self._cmd("GET", "/screenshot", what="screenshot(%r)" % path))
        with open(path, "wb") as f:
            f.write(png)
        return path
