"""docker/check_compose.py RESOLVED.yaml TOP: the shape docker/compose.yaml
must keep, checked on the output of "docker-compose config" (anchors and
variables resolved). Prints one line per problem; exit 1 when any.

- every long-running service has a health check; a one-shot service
  (restart "no") is waited for with service_completed_successfully;
- the stack has its parts: a TLS load balancer in front of two API
  instances, Redis, a primary and a streaming replica, three Kafka nodes;
- the API goes through PgBouncer, writing to the primary and reading from
  the replica, without named prepared statements (transaction pooling),
  and trusts X-Forwarded-For only from the load balancer's fixed address;
- no password, secret or key is in an environment value or a build
  argument: they come from compose secrets; every secret file has a
  committed *.example and no real one is committed;
- every Dockerfile named by a build exists, and its context is the
  repository root (where .dockerignore keeps .run/ and tmp_check/ out).
"""
import os
import re
import subprocess
import sys

import yaml

resolved, top = sys.argv[1], sys.argv[2]
with open(resolved) as f:
    doc = yaml.safe_load(f)
services = doc.get("services", {})
problems = []


def problem(msg):
    problems.append(msg)


for name in ("lb", "api1", "api2", "pgbouncer", "redis", "primary", "replica",
             "kafka1", "kafka2", "kafka3"):
    if name not in services:
        problem(f"service {name} is missing")

for name, svc in services.items():
    restart = str(svc.get("restart", ""))
    if restart == "no":
        for other, o in services.items():
            dep = (o.get("depends_on") or {})
            if isinstance(dep, dict) and name in dep and \
                    dep[name].get("condition") != "service_completed_successfully":
                problem(f"{other} depends on the one-shot {name} without "
                        "service_completed_successfully")
        continue
    hc = svc.get("healthcheck")
    if not hc or hc.get("disable") or not hc.get("test"):
        problem(f"service {name} has no health check")
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    for k, v in env.items():
        if re.search(r"PASSWORD|SECRET|_KEY$|TOKEN", k) and v not in (None, ""):
            problem(f"{name}: {k} is set in the environment; use a compose secret")
        if v and re.search(r"password=", str(v), re.I):
            problem(f"{name}: {k} carries a password; use a compose secret")
    build = svc.get("build")
    if build:
        args = build.get("args") or {}
        for k in args:
            if re.search(r"PASSWORD|SECRET|KEY|TOKEN", k, re.I):
                problem(f"{name}: build argument {k} would bake a secret into the image")
        ctx = os.path.realpath(build.get("context", "."))
        dockerfile = build.get("dockerfile", "Dockerfile")
        # the resolved file is a copy of docker/: compare by name only
        rel = os.path.join(top, dockerfile)
        if not os.path.isfile(rel):
            problem(f"{name}: {dockerfile} does not exist under the repository root")
        if os.path.basename(ctx) == "docker":
            problem(f"{name}: the build context must be the repository root, not docker/")

lb = services.get("lb", {})
if not any(str(p.get("target") if isinstance(p, dict) else p).endswith("443")
           for p in lb.get("ports", [])):
    problem("lb publishes no HTTPS port (443)")
if "tls_pem" not in [s.get("source") if isinstance(s, dict) else s
                     for s in lb.get("secrets", [])]:
    problem("lb has no tls_pem secret")
lb_ip = ((lb.get("networks") or {}).get("backend") or {}).get("ipv4_address")
for name in ("api1", "api2"):
    env = services.get(name, {}).get("environment") or {}
    if not re.search(r"host=pgbouncer .*dbname=marketdata( |$)",
                     str(env.get("MD_API_DATABASE_URL", ""))):
        problem(f"{name}: MD_API_DATABASE_URL is not PgBouncer's marketdata")
    if "dbname=marketdata_ro" not in str(env.get("MD_API_DATABASE_READ_URL", "")):
        problem(f"{name}: MD_API_DATABASE_READ_URL is not PgBouncer's marketdata_ro")
    if str(env.get("MD_API_DATABASE_PREPARE", "")) != "0":
        problem(f"{name}: named prepared statements behind transaction pooling")
pgb = (services.get("pgbouncer", {}).get("environment") or {})
if not str(pgb.get("MD_PGBOUNCER_PRIMARY", "")).startswith("primary") or \
        not str(pgb.get("MD_PGBOUNCER_REPLICA", "")).startswith("replica"):
    problem("pgbouncer does not send marketdata to the primary and marketdata_ro to the replica")
    if not lb_ip or env.get("MD_API_TRUSTED_PROXIES") != lb_ip:
        problem(f"{name}: MD_API_TRUSTED_PROXIES is not the load balancer's "
                f"address ({lb_ip})")
if services.get("replica", {}).get("command") != ["replica"]:
    problem("replica does not run the replica role")

for sname, sec in (doc.get("secrets") or {}).items():
    path = sec.get("file", "")
    # the resolved file sits beside the copy of docker/
    rel = os.path.relpath(path, os.path.dirname(os.path.realpath(resolved)))
    if not os.path.isfile(os.path.join(top, rel + ".example")):
        problem(f"secret {sname}: {rel}.example is missing")
    tracked = subprocess.run(["git", "-C", top, "ls-files", "--error-unmatch", rel],
                             capture_output=True).returncode == 0
    if tracked:
        problem(f"secret {sname}: {rel} is committed; only {rel}.example may be")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
