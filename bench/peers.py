#!/usr/bin/env python3
"""Helper of bench/peers.sh: starts servers and times their first response,
deploys isola tenants, measures RSS and density, writes workerd configs, and
turns the results (JSON lines) into the Markdown table with the targets.

Subcommands (see bench/peers.sh for how they are called):
  spawn         start a peer's server, print "PID MS" (MS: spawn to first 200)
  isola-start   start `isola serve`, deploy tenants, print "PID MS"
  new-tenants   isola: time the first request of N newly deployed tenants
  density       isola: RSS delta over N warm idle tenants
  rss           resident memory of a process and its descendants, MiB
  workerd-config  write a workerd config for one handler or 100 tenants
  report        results.jsonl -> Markdown table + targets
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

HANDLERS = ["hello", "json", "cpu", "ts"]
RUNTIMES = ["isola", "deno", "workerd", "node"]
# Settings of every benchmark tenant but the density ones: per-tenant concurrency
# above the load generator's connections, room for typescript.js (9 MB of code,
# a large heap, a slow first transpile).
BENCH_SETTINGS = {
    "limits": {
        "max_concurrency": 1000,
        "cpu": 5000,
        "startup_cpu": 10000,
        "heap_bytes": 512 << 20,
        "code_size_bytes": 32 << 20,
    }
}


def request(host, port, method="GET", path="/", headers=None, body=None, timeout=30):
    """One request on a new connection; returns (status, body, seconds)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.perf_counter() - t0
    finally:
        conn.close()


def handler_request(handler, payload):
    """(method, body, headers) of the request the load generator sends to a handler."""
    if handler == "json":
        return "POST", payload, {"content-type": "application/json"}
    return "GET", None, {}


def wait_ok(port, method, body, headers, deadline, proc=None):
    """Polls until a 200; returns the time of its end (perf_counter)."""
    last = None
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode} before answering (last: {last})")
        try:
            status, data, _ = request("127.0.0.1", port, method, "/", headers, body, timeout=5)
            if status == 200:
                return time.perf_counter()
            last = f"HTTP {status}: {data[:200]!r}"
        except (ConnectionError, OSError) as e:
            last = repr(e)
        time.sleep(0.0005)
    raise SystemExit(f"no 200 before the deadline (last: {last})")


def read_payload(path):
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def cmd_spawn(a):
    method, body, headers = handler_request(a.handler, read_payload(a.payload))
    if a.host:
        headers = dict(headers, host=a.host)
    log = open(a.log, "ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(a.cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=a.cwd, start_new_session=True)
    try:
        t1 = wait_ok(a.port, method, body, headers, t0 + a.timeout, proc)
    except SystemExit as e:
        proc.kill()
        print(f"spawn: {' '.join(a.cmd)}: {e}", file=sys.stderr)
        sys.exit(1)
    print(proc.pid, f"{(t1 - t0) * 1000:.2f}")


class Admin:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, doc):
        body = json.dumps(doc).encode()
        hdrs = {"authorization": f"Bearer {self.token}", "content-type": "application/json"}
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        if not 200 <= resp.status < 300:
            raise SystemExit(f"admin {method} {path}: HTTP {resp.status} {data[:300]!r}")

    def deploy(self, tenant, files, settings=None):
        if settings:
            self.call("PUT", f"/v1/tenants/{tenant}", settings)
        self.call("PUT", f"/v1/tenants/{tenant}/code", {"files": files, "entry": "index.js"})


def bundle(handler, handlers_dir):
    """The tenant's files: the handler as index.js plus what it imports."""
    names = {"index.js": f"{handler}.js", "common.js": "common.js"}
    if handler == "ts":
        names["typescript.js"] = "typescript.js"
    files = {}
    for name, src in names.items():
        with open(os.path.join(handlers_dir, src), encoding="utf-8") as f:
            files[name] = f.read()
    return files


def tenant_get(data_port, tenant, handler, payload):
    method, body, headers = handler_request(handler, payload)
    return request("127.0.0.1", data_port, method, "/", dict(headers, host=f"{tenant}.localhost"), body)


def cmd_isola_start(a):
    payload = read_payload(a.payload)
    log = open(a.log, "ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(a.cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = t0 + a.timeout
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"isola serve exited with status {proc.returncode}")
            if time.perf_counter() > deadline:
                raise SystemExit("isola serve: admin /healthz did not answer")
            try:
                if request("127.0.0.1", a.admin_port, path="/healthz", timeout=5)[0] == 200:
                    break
            except (ConnectionError, OSError):
                time.sleep(0.0005)
        admin = Admin(a.admin_port, a.token)
        files = bundle(a.handler, a.handlers_dir)
        tenants = [f"t{i:02d}" for i in range(a.tenants)] if a.tenants else ["bench"]
        for t in tenants:
            admin.deploy(t, files, BENCH_SETTINGS)
        headers = {"host": f"{tenants[0]}.localhost"}
        method, body, h2 = handler_request(a.handler, payload)
        t1 = wait_ok(a.data_port, method, body, dict(h2, **headers), deadline, proc)
        # A tenant's first request runs on the probation worker; the second
        # starts its isolate on its shared worker.
        for t in tenants:
            for _ in range(2):
                tenant_get(a.data_port, t, a.handler, payload)
    except SystemExit as e:
        proc.kill()
        print(f"isola-start: {e}", file=sys.stderr)
        sys.exit(1)
    print(proc.pid, f"{(t1 - t0) * 1000:.2f}")


def cmd_new_tenants(a):
    """Deploys PREFIX-0 and requests it (the code cache is warm from then on:
    the tenants share the source), then N new tenants, timing each one's first
    request over HTTP (new connection, full response)."""
    payload = read_payload(a.payload)
    admin = Admin(a.admin_port, a.token)
    files = bundle(a.handler, a.handlers_dir)
    admin.deploy(f"{a.prefix}-0", files, BENCH_SETTINGS)
    status, data, _ = tenant_get(a.data_port, f"{a.prefix}-0", a.handler, payload)
    if status != 200:
        raise SystemExit(f"{a.prefix}-0: HTTP {status} {data[:300]!r}")
    samples, firsts = [], []
    for i in range(1, a.count + 1):
        t = f"{a.prefix}-{i}"
        admin.deploy(t, files, BENCH_SETTINGS)
        status, data, secs = tenant_get(a.data_port, t, a.handler, payload)
        if status != 200:
            raise SystemExit(f"{t}: HTTP {status} {data[:300]!r}")
        samples.append(round(secs * 1000, 3))
        # The second request (isolate started on its shared worker).
        firsts.append(round(tenant_get(a.data_port, t, a.handler, payload)[2] * 1000, 3))
    # What the server counted for one of them (isolate starts, CPU, code cache).
    conn = http.client.HTTPConnection("127.0.0.1", a.admin_port, timeout=30)
    conn.request("GET", "/metrics", headers={"authorization": f"Bearer {a.token}"})
    text = conn.getresponse().read().decode()
    probe = f'tenant="{a.prefix}-1"'
    metrics = [line.replace(probe + ",", "").replace("{" + probe + "}", "") for line in text.splitlines()
               if probe in line and not line.startswith("#") and "_bucket" not in line]
    print(json.dumps({"kind": "newtenant", "h": a.handler, "samples": samples, "second": firsts, "metrics": metrics}))


def rss_kib(pid):
    """VmRSS of pid and all its descendants, KiB."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree(pid):
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cmd_procstat(a):
    """CPU seconds (user, kernel) and context switches (voluntary and not, summed
    over threads) of a process tree."""
    tick = os.sysconf("SC_CLK_TCK")
    ut = st = cs = 0
    for p in tree(a.pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ut += int(fields[11])
            st += int(fields[12])
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/status") as f:
                    cs += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
        except (OSError, IndexError, ValueError):
            pass
    print(json.dumps({"ut": ut / tick, "st": st / tick, "cs": cs}))


def cmd_rss(a):
    print(f"{rss_kib(a.pid) / 1024:.1f}")


def cmd_density(a):
    """RSS of the server with one warm tenant, then with COUNT more warm idle
    hello tenants (each requested twice: probation worker, then its worker)."""
    admin = Admin(a.admin_port, a.token)
    files = bundle("hello", a.handlers_dir)
    admin.deploy("idle-base", files)
    for _ in range(2):
        tenant_get(a.data_port, "idle-base", "hello", None)
    time.sleep(1)
    base = rss_kib(a.pid)
    t0 = time.perf_counter()
    for i in range(a.count):
        admin.deploy(f"idle-{i}", files)
    for i in range(a.count):
        for _ in range(2):
            status, data, _ = tenant_get(a.data_port, f"idle-{i}", "hello", None)
            if status != 200:
                raise SystemExit(f"idle-{i}: HTTP {status} {data[:200]!r}")
    secs = time.perf_counter() - t0
    time.sleep(2)
    after = rss_kib(a.pid)
    print(json.dumps({"kind": "density", "tenants": a.count, "base_mib": round(base / 1024, 1),
                      "after_mib": round(after / 1024, 1), "seconds": round(secs, 1)}))


WORKERD_HEAD = 'using Workerd = import "/workerd/workerd.capnp";\n'
COMPAT = "2025-06-01"


def workerd_modules(handler):
    mods = [f'(name = "worker.js", esModule = embed "{handler}.js")', '(name = "common.js", esModule = embed "common.js")']
    if handler == "ts":
        mods.append('(name = "typescript.js", esModule = embed "typescript.js")')
    return "[" + ", ".join(mods) + "]"


def cmd_workerd_config(a):
    out = [WORKERD_HEAD]
    if a.tenants:
        names = [f"t{i:02d}" for i in range(a.tenants)]
        services = ['(name = "dispatcher", worker = (modules = [(name = "worker.js", esModule = embed "dispatcher.js")], '
                    f'compatibilityDate = "{COMPAT}", bindings = ['
                    + ", ".join(f'(name = "{n}", service = "{n}")' for n in names) + "]))"]
        services += [f'(name = "{n}", worker = (modules = {workerd_modules("hello")}, compatibilityDate = "{COMPAT}"))' for n in names]
        entry = "dispatcher"
    else:
        services = [f'(name = "main", worker = (modules = {workerd_modules(a.handler)}, compatibilityDate = "{COMPAT}"))']
        entry = "main"
    out.append("const config :Workerd.Config = (\n  services = [\n    " + ",\n    ".join(services) + "\n  ],\n")
    out.append(f'  sockets = [ (name = "http", address = "127.0.0.1:{a.port}", http = (), service = "{entry}") ],\n);\n')
    with open(a.out, "w") as f:
        f.write("".join(out))


# ---------------------------------------------------------------- report


def med(xs):
    return statistics.median(xs) if xs else None


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


def fmt(x, digits=2):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def cmd_report(a):
    recs = [json.loads(line) for line in open(a.results) if line.strip()]
    na = {r["rt"]: r["why"] for r in recs if r["kind"] == "na"}
    na_h = {r["h"]: r["why"] for r in recs if r["kind"] == "na_h"}
    runs, rss, cold, newt, dens, fails = {}, {}, {}, {}, None, {}
    for r in recs:
        k = (r.get("rt"), r.get("h"))
        if r["kind"] == "run":
            runs.setdefault(k, []).append(r)
        elif r["kind"] == "rss":
            rss.setdefault(k, []).append(r["mib"])
        elif r["kind"] == "cold":
            cold.setdefault(k, []).append(r["ms"])
        elif r["kind"] == "newtenant":
            newt[r["h"]] = r
        elif r["kind"] == "density":
            dens = r
        elif r["kind"] == "fail":
            fails.setdefault(k, []).append(r["why"])

    def stat(rt, h, field):
        return med([r[field] for r in runs.get((rt, h), [])])

    out = []
    w = out.append
    def cpu(rs):
        us, sysp, cs = [], [], []
        for r in rs:
            if "cpu0" in r and r["requests"]:
                d = {k: r["cpu1"][k] - r["cpu0"][k] for k in ("ut", "st", "cs")}
                us.append((d["ut"] + d["st"]) / r["requests"] * 1e6)
                sysp.append(100 * d["st"] / (d["ut"] + d["st"]) if d["ut"] + d["st"] else 0)
                cs.append(d["cs"] / r["requests"])
        if not us:
            return "-", "-"
        return f"{med(us):.1f} ({med(sysp):.0f}%)", f"{med(cs):.2f}"

    w("| runtime | handler | requests/s (median; min-max) | p50 ms | p99 ms | errors | server CPU us/req (kernel) | ctx switches/req | RSS MiB | cold start: process ms | cold start: new tenant ms (p50 / p99) |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [(rt, h) for h in HANDLERS for rt in RUNTIMES] + [(rt, "100 tenants") for rt in ("isola", "workerd", "node")]
    for rt, h in rows:
        label = "hello x 100 tenants at random" if h == "100 tenants" else h
        if rt in na:
            w(f"| {rt} | {label} | not available ({na[rt]}) | | | | | | | | |")
            continue
        if h in na_h:
            w(f"| {rt} | {label} | not available ({na_h[h]}) | | | | | | | | |")
            continue
        rs = runs.get((rt, h), [])
        if not rs:
            why = "; ".join(sorted(set(fails.get((rt, h), []))))
            w(f"| {rt} | {label} | {'failed (' + why + ')' if why else 'not run'} | | | | | | | | |")
            continue
        rps = [r["rps"] for r in rs]
        errs = sum(r["non2xx"] + r["errors"] for r in rs)
        nt = "-"
        if rt == "isola" and h in newt:
            s = newt[h]["samples"]
            nt = f"{fmt(med(s))} / {fmt(pct(s, 99))} (n={len(s)})"
        c = med(cold.get((rt, h), []))
        cu, cs = cpu(rs)
        w(f"| {rt} | {label} | {fmt(med(rps))} ({fmt(min(rps))}-{fmt(max(rps))}) | {fmt(stat(rt, h, 'p50'))} | "
          f"{fmt(stat(rt, h, 'p99'))} | {errs} | {cu} | {cs} | {fmt(med(rss.get((rt, h), [])), 1)} | {fmt(c, 1) if h != '100 tenants' else '-'} | {nt} |")
    nfail = {k: v for k, v in fails.items() if k in runs}
    for (rt, h), v in sorted(nfail.items()):
        w(f"\n{rt} {h}: {len(v)} round(s) failed: {'; '.join(sorted(set(v)))}")

    for h in HANDLERS:
        if h in newt:
            r = newt[h]
            m = r.get("metrics", [])
            ms = ", ".join(f"`{x}`" for x in m if any(k in x for k in ("starts", "cpu_seconds", "wall_seconds_sum", "code_cache")))
            w(f"\nisola new `{h}` tenants: first request p50 {fmt(med(r['samples']))} ms, second request p50 "
              f"{fmt(med(r['second']))} ms (n={len(r['samples'])}); counters of one of them after both: {ms or '-'}")
    w("")
    w("Ratios: isola / peer for the comparisons, measured / target for the absolute targets.")
    w("")
    w("| target | measured | ratio | result |")
    w("|---|---|---:|---|")

    def ratio_row(name, num, den, need, higher_better, unit="", peer_rt=None):
        if num is None or den is None:
            miss = "isola" if num is None else peer_rt
            why = na.get(miss, "not measured")
            w(f"| {name} | n/a ({miss}: {why}) | - | n/a |")
            return
        ratio = num / den if den else float("inf")
        ok = ratio >= need if higher_better else ratio <= need
        w(f"| {name} | {fmt(num)}{unit} vs {fmt(den)}{unit} | {ratio:.2f}x | {'PASS' if ok else 'FAIL'} |")

    def peer(rt, h, field):
        return None if rt in na else stat(rt, h, field)

    ratio_row("1-core hello world: isola rps >= 1.0x Deno's", peer("isola", "hello", "rps"), peer("deno", "hello", "rps"), 1.0, True, peer_rt="deno")
    ratio_row("1-core hello world: isola p99 <= Deno's", peer("isola", "hello", "p99"), peer("deno", "hello", "p99"), 1.0, False, " ms", "deno")
    ratio_row("1-core hello world: isola rps >= 2x node's", peer("isola", "hello", "rps"), peer("node", "hello", "rps"), 2.0, True, peer_rt="node")
    ratio_row("100 tenants at random: isola rps >= 3x workerd's", peer("isola", "100 tenants", "rps"), peer("workerd", "100 tenants", "rps"), 3.0, True, peer_rt="workerd")
    ratio_row("100 tenants at random: isola p99 <= workerd's", peer("isola", "100 tenants", "p99"), peer("workerd", "100 tenants", "p99"), 1.0, False, " ms", "workerd")
    s = newt.get("hello", {}).get("samples", [])
    ratio_row("new tenant, first request p50 <= 1.0 ms", med(s), 1.0 if s else None, 1.0, False, " ms")
    ratio_row("new tenant, first request p99 <= 3 ms", pct(s, 99), 3.0 if s else None, 1.0, False, " ms")
    s = newt.get("ts", {}).get("samples", [])
    ratio_row("typescript.js tenant, first request (warm code cache, median) <= 35 ms", med(s), 35.0 if s else None, 1.0, False, " ms")
    if dens:
        delta = dens["after_mib"] - dens["base_mib"]
        per_gib = dens["tenants"] / (delta / 1024) if delta > 0 else float("inf")
        w(f"| idle tenants per GiB >= 2000 ({dens['tenants']} warm hello tenants: RSS {fmt(dens['base_mib'], 1)} -> "
          f"{fmt(dens['after_mib'], 1)} MiB) | {per_gib:,.0f} per GiB ({delta / dens['tenants'] * 1024:.0f} KiB each) | "
          f"{per_gib / 2000:.2f}x | {'PASS' if per_gib >= 2000 else 'FAIL'} |")
    else:
        w("| idle tenants per GiB >= 2000 | n/a (not measured) | - | n/a |")
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="sub", required=True)
    s = sub.add_parser("spawn")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--handler", default="hello")
    s.add_argument("--payload")
    s.add_argument("--host")
    s.add_argument("--cwd")
    s.add_argument("--log", required=True)
    s.add_argument("--timeout", type=float, default=120)
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    s.set_defaults(f=cmd_spawn)
    s = sub.add_parser("isola-start")
    for name in ("--data-port", "--admin-port"):
        s.add_argument(name, type=int, required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--handler", default="hello")
    s.add_argument("--handlers-dir", required=True)
    s.add_argument("--tenants", type=int, default=0)
    s.add_argument("--payload")
    s.add_argument("--log", required=True)
    s.add_argument("--timeout", type=float, default=300)
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    s.set_defaults(f=cmd_isola_start)
    s = sub.add_parser("new-tenants")
    for name in ("--data-port", "--admin-port"):
        s.add_argument(name, type=int, required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--handler", default="hello")
    s.add_argument("--handlers-dir", required=True)
    s.add_argument("--payload")
    s.add_argument("--prefix", required=True)
    s.add_argument("--count", type=int, default=100)
    s.set_defaults(f=cmd_new_tenants)
    s = sub.add_parser("density")
    for name in ("--data-port", "--admin-port", "--pid"):
        s.add_argument(name, type=int, required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--handlers-dir", required=True)
    s.add_argument("--count", type=int, default=1000)
    s.set_defaults(f=cmd_density)
    s = sub.add_parser("procstat")
    s.add_argument("pid", type=int)
    s.set_defaults(f=cmd_procstat)
    s = sub.add_parser("rss")
    s.add_argument("pid", type=int)
    s.set_defaults(f=cmd_rss)
    s = sub.add_parser("workerd-config")
    s.add_argument("--out", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--handler", default="hello")
    s.add_argument("--tenants", type=int, default=0)
    s.set_defaults(f=cmd_workerd_config)
    s = sub.add_parser("report")
    s.add_argument("results")
    s.set_defaults(f=cmd_report)
    a = p.parse_args()
    if getattr(a, "cmd", None) and a.cmd[0] == "--":
        a.cmd = a.cmd[1:]
    a.f(a)


if __name__ == "__main__":
    main()
