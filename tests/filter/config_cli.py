#!/usr/bin/env python3
"""`ndrguard config` run for real (issue 14): the effective settings, -d the defaults, -n only
what differs, as postconf does; exit 2 naming the key on a bad value or combination, from
--set as from a file (and serve refuses the same). deploy/ndrguard.conf read back is all
defaults; --help lists every subcommand, and each one's --help is its usage.
usage: config_cli.py NDRGUARD SOURCE_DIR WORK_DIR"""
import os
import shutil
import subprocess
import sys

ndrguard, source, work = sys.argv[1:4]
failures = []
env = {k: v for k, v in os.environ.items() if k != "NDRGUARD_DB"}


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    if not ok:
        failures.append(name)


def run(*args, command="config"):
    return subprocess.run([ndrguard, command, *args], capture_output=True, text=True, timeout=30, env=env)


def settings(text):
    out = {}
    for line in text.splitlines():
        key, eq, value = line.partition(" =")
        assert eq, line
        out[key] = value.strip()
    return out


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
shipped = os.path.join(source, "deploy", "ndrguard.conf")

defaults = run("-d")
check("config -d: exit 0", defaults.returncode == 0, defaults.stderr)
d = settings(defaults.stdout)
check("config -d: every key, with its default", d.get("storm_threshold") == "50" and d.get("link_ttl_days") == "14"
      and d.get("mode") == "after_queue" and d.get("our_networks") == "127.0.0.0/8, ::1/128"
      and d.get("policy.dsn.forged") == "reject" and d.get("database") == "" and len(d) > 50, defaults.stdout)
check("config -d: 'key = value' lines, empty values as 'key ='", "\ndatabase =\n" in defaults.stdout, defaults.stdout)

effective = run()
check("config with nothing set: the defaults", effective.returncode == 0 and effective.stdout == defaults.stdout,
      effective.stdout + effective.stderr)
check("config -n with nothing set: nothing", run("-n").stdout == "")
check("config -n on the shipped file: nothing (it states the defaults)",
      run("-n", "--config", shipped).stdout == "", run("-n", "--config", shipped).stdout)

conf = os.path.join(work, "site.conf")
with open(conf, "w") as f:
    f.write("# a site\nmode = before_queue\nstorm_threshold = 80\nweb_base_url = https://q.example.org/\n")
site = run("--config", conf, "--set", "storm_threshold=90", "--set", "policy.ndr.forged=quarantine")
s = settings(site.stdout)
check("config: the file, then --set after it", site.returncode == 0 and s["mode"] == "before_queue"
      and s["storm_threshold"] == "90" and s["web_base_url"] == "https://q.example.org"
      and s["policy.dsn.forged"] == "quarantine" and s["listen"] == "127.0.0.1:10025", site.stdout + site.stderr)
n = run("-n", "--config", conf, "--set", "storm_threshold=90")
check("config -n: only what differs", n.returncode == 0 and n.stdout ==
      "mode = before_queue\nstorm_threshold = 90\nweb_base_url = https://q.example.org\n", n.stdout + n.stderr)
named = run("--config", conf, "storm_threshold", "listen")
check("config KEY...: those keys, in the order given", named.stdout == "storm_threshold = 80\nlisten = 127.0.0.1:10025\n",
      named.stdout + named.stderr)
check("config --db: the conninfo as given", settings(run("--db", "dbname=x").stdout)["database"] == "dbname=x")

bad = run("--set", "link_ttl_days=0")
check("a bad value: exit 2, the key named", bad.returncode == 2 and "link_ttl_days: want 1..365" in bad.stderr
      and bad.stdout == "", bad.stderr)
unknown = run("--set", "no_such_key=1")
check("an unknown key: exit 2, named", unknown.returncode == 2 and "no_such_key" in unknown.stderr, unknown.stderr)
check("an unknown key to print: exit 2", run("no_such_key").returncode == 2)

combo = run("--set", "storm_exit_threshold=100")
check("a bad combination from --set: exit 2, both keys named", combo.returncode == 2
      and "storm_exit_threshold = 100 must be below storm_threshold = 50" in combo.stderr
      and "--set storm_exit_threshold=100" in combo.stderr, combo.stderr)
bad_conf = os.path.join(work, "bad.conf")
with open(bad_conf, "w") as f:
    f.write("# storms\nstorm_exit_threshold = 100\n")
from_file = run("--config", bad_conf)
check("the same combination from a file: exit 2, file and line named", from_file.returncode == 2
      and bad_conf + ":2: storm_exit_threshold = 100 must be below storm_threshold = 50" in from_file.stderr, from_file.stderr)
mended = run("--config", bad_conf, "--set", "storm_threshold=200")
check("a file mended by --set after it: accepted", mended.returncode == 0, mended.stderr)
bad_line = os.path.join(work, "bad-line.conf")
with open(bad_line, "w") as f:
    f.write("listen = 127.0.0.1:10025\nbounce_window_days = 0\n")
line = run("--config", bad_line)
check("a bad value in a file: exit 2, file, line and key named", line.returncode == 2
      and bad_line + ":2: bounce_window_days: want 1..365" in line.stderr, line.stderr)

serve = run("--set", "storm_exit_threshold=100", command="serve")
check("serve refuses the --set combination as well (exit 2, before any database)", serve.returncode == 2
      and "storm_exit_threshold" in serve.stderr, serve.stderr)

helped = subprocess.run([ndrguard, "--help"], capture_output=True, text=True, timeout=30)
check("--help lists config", helped.returncode == 0 and "\n  config " in helped.stdout, helped.stdout)
for command in ("scan", "migrate", "serve", "config", "quarantine", "digest"):
    own = subprocess.run([ndrguard, command, "--help"], capture_output=True, text=True, timeout=30)
    check("--help lists %s, whose own --help is its usage" % command, "\n  %s " % command in helped.stdout
          and own.returncode == 0 and own.stdout.startswith("usage: ndrguard %s " % command), own.stdout + own.stderr)
check("help config: its own usage", "ndrguard config [-d | -n]" in subprocess.run(
    [ndrguard, "help", "config"], capture_output=True, text=True, timeout=30).stdout)

print("config_cli: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
