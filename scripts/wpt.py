#!/usr/bin/env python3
"""Runs web-platform-tests from a WPT checkout inside isola tenants and prints
the pass rate per directory.

    scripts/wpt.sh PATH [DIR ...]

Each `*.any.js` test (the tests meant for workers and shells) becomes one
classic script: WPT's own resources/testharness.js, the test's `// META:
script=` dependencies, the test, and a reporter; `isola run` runs it in a
fresh tenant from the base snapshot. `fetch` of a file of the checkout (the
JSON data some tests load) is answered from the checkout; everything else a
test needs must be isola's. Nothing of WPT is committed; the checkout is the
caller's.
"""
import base64
import functools
import json
import os
import re
import subprocess
import sys
import tempfile

DEFAULT_DIRS = [
    "url", "encoding", "streams", "fetch/api/headers", "fetch/api/request", "fetch/api/response",
    "WebCryptoAPI", "html/webappapis/structured-clone", "html/webappapis/atob", "compression",
    "dom/abort", "dom/events",
]
MAX_RESOURCE = 4 << 20  # bytes of checkout files a test may fetch

PRELUDE = r"""
var GLOBAL = { isWindow() { return false; }, isWorker() { return true; }, isShadowRealm() { return false; } };
var __wpt_files = %(files)s;
var __wpt_base = %(base)s;
// A worker's location (WorkerLocation): the test's URL on WPT's server.
var location = new URL("http://web-platform.test:8000/" + %(test)s);
(function () {
  const real = typeof fetch === "function" ? fetch : undefined;
  globalThis.fetch = function (input, init) {
    const url = String(input && input.url !== undefined ? input.url : input);
    const path = url.startsWith("/") ? url.slice(1) : __wpt_base + url;
    const norm = [];
    for (const part of path.split("/")) { if (part === "..") norm.pop(); else if (part !== "." && part !== "") norm.push(part); }
    const key = norm.join("/");
    if (Object.prototype.hasOwnProperty.call(__wpt_files, key)) {
      let body = __wpt_files[key];
      if (typeof body !== "string") {  // a binary file, base64
        const s = atob(body.b64);
        body = new Uint8Array(s.length);
        for (let i = 0; i < s.length; i++) body[i] = s.charCodeAt(i);
      }
      const type = key.endsWith(".json") ? "application/json" : typeof __wpt_files[key] === "string" ? "text/plain" : "application/octet-stream";
      return Promise.resolve(new Response(body, { headers: { "content-type": type } }));
    }
    if (real) return real(input, init);
    return Promise.reject(new TypeError("fetch is not available: " + url));
  };
})();
"""

REPORTER = r"""
// Older copies of testharness.js lack fetch_json, which newer tests use.
if (typeof fetch_json !== "function") globalThis.fetch_json = (r) => fetch(r).then((x) => x.json());
var __wpt_results = [];
var __wpt_done;
var __wpt_finished = new Promise((r) => { __wpt_done = r; });
add_result_callback((t) => { __wpt_results.push([t.name, t.status, t.message ? String(t.message).slice(0, 300) : null]); });
add_completion_callback((tests, harness) => { __wpt_done([harness.status, harness.message ? String(harness.message).slice(0, 300) : null]); });
setup({ explicit_done: true, explicit_timeout: true });
"""

EPILOGUE = r"""
done();
function handler() {
  return Promise.race([__wpt_finished, new Promise((r) => setTimeout(() => r([2, "runner timeout"]), 20000))])
    .then((h) => ({ harness: h, results: __wpt_results }));
}
handler;
"""


def meta(source):
    scripts, globals_ = [], None
    for line in source.splitlines():
        m = re.match(r"//\s*META:\s*(\w+)=(.*)$", line.strip())
        if not m:
            if line.strip() and not line.startswith("//"):
                break
            continue
        key, value = m.group(1), m.group(2).strip()
        if key == "script":
            scripts.append(value)
        elif key == "global":
            globals_ = value
    return scripts, globals_


def resolve(root, test_dir, ref):
    return os.path.normpath(os.path.join(root, ref.lstrip("/")) if ref.startswith("/") else os.path.join(test_dir, ref))


@functools.lru_cache(maxsize=None)
def json_files(root, test_dir):
    """The JSON files below a test's directory (read once per directory)."""
    files = {}
    for dirpath, _, names in os.walk(test_dir):
        for n in names:
            if n.endswith(".json"):
                p = os.path.join(dirpath, n)
                if os.path.getsize(p) <= MAX_RESOURCE:
                    files[os.path.relpath(p, root)] = open(p, encoding="utf-8", errors="replace").read()
    return files


def referenced_files(root, test_dir, sources):
    """Checkout files a test names in a string literal (fetched data: "resources/x.json",
    "/media/foo.vtt"), and for idlharness tests the /interfaces/NAME.idl of every quoted
    NAME; a binary file is passed as {"b64": ...}. Server-side scripts (.py) are left out."""
    files = {}
    for src in sources:
        for lit in set(re.findall(r"""["'`]([^"'`\s]{1,200})["'`]""", src)):
            refs = [lit.split("?")[0].split("#")[0]]
            if "idl_test(" in src and re.fullmatch(r"[\w.-]+", lit):
                refs.append("/interfaces/" + lit + ".idl")
            for ref in refs:
                if not ref or ref.endswith((".py", ".js")):
                    continue
                p = resolve(root, test_dir, ref)
                if not p.startswith(root + os.sep) or not os.path.isfile(p) or os.path.getsize(p) > MAX_RESOURCE:
                    continue
                data = open(p, "rb").read()
                try:
                    body = data.decode("utf-8")
                except UnicodeDecodeError:
                    body = {"b64": base64.b64encode(data).decode("ascii")}
                files[os.path.relpath(p, root)] = body
    return files


def bundle(root, test):
    source = open(test, encoding="utf-8").read()
    scripts, globals_ = meta(source)
    if globals_ is not None:
        scopes = [g.strip() for g in globals_.split(",")]
        # A shadowrealm-only test checks what a ShadowRealm's global lacks (e.g. no
        # AbortSignal.timeout): it does not apply to a tenant's global.
        if not any(g in ("worker", "dedicatedworker", "jsshell", "window,worker") for g in scopes) and "worker" not in globals_:
            return None  # a window-only (or shadowrealm-only) test
    test_dir = os.path.dirname(test)
    files = dict(json_files(root, test_dir))
    sources = [source] + [open(p, encoding="utf-8").read() for p in (resolve(root, test_dir, s) for s in scripts) if os.path.exists(p)]
    files.update(referenced_files(root, test_dir, sources))
    base = os.path.relpath(test_dir, root) + "/"
    prelude = PRELUDE % {"files": json.dumps(files), "base": json.dumps(base), "test": json.dumps(os.path.relpath(test, root))}
    parts = [prelude]
    parts.append(open(os.path.join(root, "resources/testharness.js"), encoding="utf-8").read())
    parts.append(REPORTER)
    if any(s.endswith("idlharness.js") for s in scripts):
        # idlharness.js throws "Unexpected global object" unless the global is a known
        # scope: let the tenant's global pass as a DedicatedWorkerGlobalScope (after
        # testharness.js, which would otherwise post its results to self.postMessage).
        parts.append("globalThis.DedicatedWorkerGlobalScope = class DedicatedWorkerGlobalScope { static [Symbol.hasInstance](o) { return o === globalThis; } };")
    for s in scripts:
        p = resolve(root, test_dir, s)
        if not os.path.exists(p):
            return ("missing", s)
        parts.append(open(p, encoding="utf-8").read())
    parts.append(source)
    parts.append(EPILOGUE)
    return "\n;\n".join(parts)


def run(isola, data_dir, script_path):
    p = subprocess.run(
        [isola, "--data-dir", data_dir, "run", "--no-cache", "--cpu-ms", "20000", "--wall-ms", "30000", "--heap-mb", "512", script_path],
        capture_output=True, text=True, timeout=120,
    )
    try:
        out = json.loads(p.stdout)
    except ValueError:
        return None, (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
    return out, None


def main():
    if len(sys.argv) < 3:
        print("usage: wpt.py ISOLA WPT_PATH [DIR ...]", file=sys.stderr)
        sys.exit(2)
    isola, root = sys.argv[1], os.path.abspath(sys.argv[2])
    dirs = sys.argv[3:] or DEFAULT_DIRS
    verbose = os.environ.get("WPT_VERBOSE")
    data_dir = tempfile.mkdtemp(prefix="isola-wpt-")
    rows = []
    for d in dirs:
        full = os.path.join(root, d)
        if not os.path.isdir(full):
            rows.append((d, 0, 0, 0, "not in the checkout"))
            continue
        tests = sorted(
            os.path.join(dp, n) for dp, _, ns in os.walk(full) for n in ns
            if n.endswith(".any.js") and "/resources/" not in os.path.join(dp, n)
        )
        passed = total = files_failed = 0
        for t in tests:
            b = bundle(root, t)
            if b is None:
                continue
            rel = os.path.relpath(t, root)
            if isinstance(b, tuple):
                files_failed += 1
                if verbose:
                    print(f"  {rel}: missing {b[1]}")
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".cjs", delete=False) as f:
                f.write(b)
                path = f.name
            try:
                out, err = run(isola, data_dir, path)
            except subprocess.TimeoutExpired:
                out, err = None, ["timed out"]
            finally:
                os.unlink(path)
            if out is None or not isinstance(out, dict) or "results" not in out:
                files_failed += 1
                if verbose:
                    print(f"  {rel}: harness error: {err or out}")
                continue
            results = out["results"]
            ok = sum(1 for r in results if r[1] == 0)
            passed += ok
            total += len(results)
            if out["harness"][0] != 0:
                files_failed += 1
            if verbose:
                print(f"  {rel}: {ok}/{len(results)}" + (f" (harness: {out['harness'][1]})" if out["harness"][0] != 0 else ""))
                if verbose == "2":
                    for r in results:
                        if r[1] != 0:
                            print(f"      FAIL {r[0]}: {r[2]}")
        rows.append((d, passed, total, files_failed, ""))
    print("| directory | passed | subtests | pass rate | files with a harness error |")
    print("|---|---:|---:|---:|---:|")
    for d, p, t, ff, note in rows:
        rate = f"{100.0 * p / t:.1f}%" if t else "-"
        print(f"| {d} | {p} | {t} | {rate} | {ff}{' (' + note + ')' if note else ''} |")


if __name__ == "__main__":
    main()
