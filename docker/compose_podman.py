#!/usr/bin/python3
"""docker/compose_podman.py: runs docker/compose.yaml with podman.

Debian 12's podman-compose (1.0.3) neither waits for depends_on conditions
nor knows fixed addresses or overrides that drop a service, and podman
runs no health checks by itself without systemd. This driver reads the
compose file and its overrides, merged as Docker Compose merges them
(mappings key by key, anything else replaced; an override value tagged
!reset removes the key, !override replaces instead of merging), and
drives podman:

  compose_podman.py -p PROJECT -f compose.yaml [-f override.yaml] up [--build]
  compose_podman.py -p PROJECT -f ... down [--rmi]
  compose_podman.py -p PROJECT -f ... wait SERVICE... [--timeout S]
  compose_podman.py -p PROJECT -f ... config

up builds the images (podman build --format docker, so HEALTHCHECK is
kept), makes the networks and volumes, and starts the services in the
order of depends_on, waiting for service_healthy (running the service's
health check, "podman healthcheck run") and service_completed_successfully.
Containers are named PROJECT-SERVICE with the service name as network
alias; everything made carries the label md.stack=PROJECT, by which down
removes it. Restart policies are not applied: the tests stop, kill and
start containers themselves. ${VAR}, ${VAR:-default} and ${VAR-default}
are taken from the environment, then from a .env file beside the first
compose file.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

import yaml


class Reset:
    pass


class Override:
    def __init__(self, value):
        self.value = value


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("!reset", lambda loader, node: Reset())


def _override(loader, node):
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


Loader.add_constructor("!override", _override)


def merge(base, over):
    if isinstance(over, Override):
        return over.value
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if isinstance(v, Reset):
                out.pop(k, None)
            elif k in out:
                out[k] = merge(out[k], v)
            else:
                out[k] = v.value if isinstance(v, Override) else v
        return out
    return over


VAR = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\})")


def interpolate(value, env):
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(1) == "$":
            return "$"
        name, op, default = m.group(2), m.group(3), m.group(4)
        v = env.get(name)
        if op == ":-" and not v:
            return default
        if op == "-" and v is None:
            return default
        return v or ""

    return VAR.sub(sub, value)


def load(files):
    top = os.path.dirname(os.path.abspath(files[0]))
    env = {}
    dotenv = os.path.join(top, ".env")
    if os.path.exists(dotenv):
        with open(dotenv) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    env[k] = v
    env.update(os.environ)
    conf = {}
    for path in files:
        with open(path) as f:
            conf = merge(conf, yaml.load(f, Loader=Loader) or {})
    conf = {k: v for k, v in conf.items() if not k.startswith("x-")}
    conf["services"] = {k: v for k, v in conf.get("services", {}).items()
                        if v is not None}
    return interpolate(conf, env), top


def podman(*args, check=True, quiet=False):
    out = subprocess.DEVNULL if quiet else None
    r = subprocess.run(["podman", *args], stdout=out, stderr=subprocess.PIPE,
                       text=True)
    # without systemd podman says at every container that it cannot
    # schedule the health checks: we run them ourselves
    for line in r.stderr.splitlines():
        if "unable to get systemd connection" not in line:
            print(line, file=sys.stderr)
    if check and r.returncode != 0:
        sys.exit("compose_podman: podman %s failed (%d)" % (args[0], r.returncode))
    return r.returncode


def seconds(text, default):
    if text is None:
        return default
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(text))
    if not m:
        return default
    n = int(m.group(1))
    return {"ms": n / 1000, "m": n * 60}.get(m.group(2), n)


def order(services):
    done, out = set(), []

    def visit(name, path):
        if name in done:
            return
        if name in path:
            sys.exit("compose_podman: depends_on cycle at " + name)
        for dep in deps(services[name]):
            if dep not in services:
                sys.exit("compose_podman: %s depends on unknown %s" % (name, dep))
            visit(dep, path + [name])
        done.add(name)
        out.append(name)

    for name in services:
        visit(name, [])
    return out


def deps(svc):
    d = svc.get("depends_on") or {}
    if isinstance(d, list):
        return {k: {"condition": "service_started"} for k in d}
    return d


def healthy(cname):
    return subprocess.run(["podman", "healthcheck", "run", cname],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def state(cname):
    r = subprocess.run(["podman", "inspect", "-f",
                        "{{.State.Status}} {{.State.ExitCode}}", cname],
                       capture_output=True, text=True)
    return r.stdout.split() if r.returncode == 0 else ["missing", "0"]


def wait_for(project, name, condition, timeout):
    cname = "%s-%s" % (project, name)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = state(cname)
        if condition == "service_completed_successfully":
            if st[0] == "exited":
                if st[1] == "0":
                    return
                sys.exit("compose_podman: %s exited with %s" % (name, st[1]))
        elif st[0] in ("exited", "missing"):
            subprocess.run(["podman", "logs", "--tail", "30", cname])
            sys.exit("compose_podman: %s is %s" % (name, st[0]))
        elif condition == "service_started" or healthy(cname):
            return
        time.sleep(1)
    subprocess.run(["podman", "logs", "--tail", "30", cname])
    sys.exit("compose_podman: %s not %s after %d s" % (name, condition, timeout))


def run_args(project, name, svc, conf, top):
    label = "md.stack=" + project
    a = ["run", "-d", "--name", "%s-%s" % (project, name), "--label", label,
         "--label", "md.service=" + name]
    nets = svc.get("networks") or {"default": {}}
    if isinstance(nets, list):
        nets = {n: {} for n in nets}
    for net, opts in nets.items():
        spec = "%s_%s:alias=%s" % (project, net, name)
        if opts and opts.get("ipv4_address"):
            spec += ",ip=" + opts["ipv4_address"]
        a += ["--network", spec]
    a += ["--hostname", svc.get("hostname", name)]
    for f in svc.get("env_file") or []:
        a += ["--env-file", os.path.join(top, f)]
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    for k, v in env.items():
        a += ["-e", "%s=%s" % (k, "" if v is None else v)]
    for s in svc.get("secrets") or []:
        src = conf["secrets"][s]["file"]
        a += ["-v", "%s:/run/secrets/%s:ro" % (os.path.join(top, src), s)]
    for v in svc.get("volumes") or []:
        src, dst = v.split(":", 1)
        if not src.startswith((".", "/")):
            src = "%s_%s" % (project, src)
        else:
            src = os.path.join(top, src)
        a += ["-v", "%s:%s" % (src, dst)]
    for p in svc.get("ports") or []:
        a += ["-p", str(p)]
    if svc.get("shm_size"):
        a += ["--shm-size", str(svc["shm_size"])]
    if svc.get("stop_signal"):
        a += ["--stop-signal", svc["stop_signal"]]
    if svc.get("stop_grace_period"):
        a += ["--stop-timeout", str(int(seconds(svc["stop_grace_period"], 10)))]
    hc = svc.get("healthcheck")
    if hc:
        test = hc.get("test")
        if isinstance(test, list) and test[0] == "CMD":
            a += ["--health-cmd", json.dumps(test[1:])]
        elif isinstance(test, list) and test[0] == "CMD-SHELL":
            a += ["--health-cmd", test[1]]
        elif isinstance(test, list) and test[0] == "NONE":
            a += ["--no-healthcheck"]
        elif isinstance(test, str):
            a += ["--health-cmd", test]
        for k, flag in (("interval", "--health-interval"),
                        ("timeout", "--health-timeout"),
                        ("start_period", "--health-start-period")):
            if hc.get(k):
                a += [flag, str(hc[k])]
        if hc.get("retries"):
            a += ["--health-retries", str(hc["retries"])]
    ep = svc.get("entrypoint")
    if ep is not None:
        a += ["--entrypoint", json.dumps(ep if isinstance(ep, list) else shlex.split(ep))]
    a.append(svc["image"])
    cmd = svc.get("command")
    if cmd is not None:
        a += cmd if isinstance(cmd, list) else shlex.split(cmd)
    return a


def images(conf, top):
    """image name -> its build (the first service that builds it)."""
    out = {}
    for svc in conf["services"].values():
        b = svc.get("build")
        if b and svc["image"] not in out:
            if isinstance(b, str):
                b = {"context": b}
            out[svc["image"]] = b
    return out


def up(project, conf, top, build, timeout):
    if build:
        for image, b in images(conf, top).items():
            ctx = os.path.normpath(os.path.join(top, b.get("context", ".")))
            df = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
            print("compose_podman: building %s" % image, flush=True)
            podman("build", "--format", "docker", "-q", "-f", df, "-t", image, ctx,
                   quiet=True)
    for net, opts in (conf.get("networks") or {}).items():
        opts = opts or {}
        a = ["network", "create", "--label", "md.stack=" + project]
        if opts.get("internal"):
            a.append("--internal")
        for c in (opts.get("ipam") or {}).get("config") or []:
            if c.get("subnet"):
                a += ["--subnet", c["subnet"]]
        podman(*a, "%s_%s" % (project, net), quiet=True)
    for vol in conf.get("volumes") or {}:
        podman("volume", "create", "--label", "md.stack=" + project,
               "%s_%s" % (project, vol), quiet=True)
    services = conf["services"]
    for name in order(services):
        for dep, c in deps(services[name]).items():
            wait_for(project, dep, c.get("condition", "service_started"), timeout)
        print("compose_podman: starting %s" % name, flush=True)
        podman(*run_args(project, name, services[name], conf, top), quiet=True)


def down(project, conf, rmi):
    label = "label=md.stack=" + project
    ids = subprocess.run(["podman", "ps", "-aq", "--filter", label],
                         capture_output=True, text=True).stdout.split()
    if ids:
        podman("rm", "-f", "-t", "5", *ids, check=False, quiet=True)
    for kind in ("network", "volume"):
        ids = subprocess.run(["podman", kind, "ls", "-q", "--filter", label],
                             capture_output=True, text=True).stdout.split()
        if ids:
            podman(kind, "rm", "-f", *ids, check=False, quiet=True)
    if rmi:
        for image in images(conf, None):
            podman("rmi", "-f", image, check=False, quiet=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-p", "--project", required=True)
    ap.add_argument("-f", "--file", action="append", required=True)
    ap.add_argument("command", choices=["up", "down", "wait", "config"])
    ap.add_argument("services", nargs="*")
    ap.add_argument("--build", action="store_true")
    ap.add_argument("--rmi", action="store_true")
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args()
    conf, top = load(args.file)
    if args.command == "config":
        yaml.safe_dump(conf, sys.stdout, sort_keys=False)
    elif args.command == "up":
        up(args.project, conf, top, args.build, args.timeout)
    elif args.command == "down":
        down(args.project, conf, args.rmi)
    else:
        for name in args.services or conf["services"]:
            wait_for(args.project, name, "service_healthy", args.timeout)


if __name__ == "__main__":
    main()
