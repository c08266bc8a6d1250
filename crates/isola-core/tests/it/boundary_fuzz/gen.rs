//! Generators of hostile handler sources for the boundary fuzz: statuses,
//! headers, bodies, streams, call results and prototype patches, picked by a
//! seeded xorshift PRNG so every case can be regenerated from its seed.

/// xorshift64* (Vigna): tiny, deterministic, good enough to pick cases.
pub struct Rng(u64);

impl Rng {
    /// The generator of case `case` of run `seed` (each case reproducible alone).
    pub fn for_case(seed: u64, case: u64) -> Rng {
        // splitmix64 of (seed, case): never zero for xorshift.
        let mut z = seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// The ArrayBuffer budget of fuzzed tenants; `BIG` in sources is just above it.
pub const BUDGET: usize = 4 << 20;

/// Helpers every generated source starts with.
const PRELUDE: &str = r#"
const BIG = (4 << 20) + 1;
const detachedBuffer = () => { const b = new ArrayBuffer(8); b.transfer(); return b; };
const detachedView = () => { const u = new Uint8Array(8); u.buffer.transfer(); return u; };
const PLAIN = () => new Response('plain-ok', { status: 200, statusText: '', headers: undefined });
"#;

const STATUSES: &[&str] = &[
    "200",
    "201",
    "204",
    "299",
    "404",
    "500",
    "599",
    "600",
    "199",
    "100",
    "0",
    "-1",
    "-0",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e9",
    "2 ** 53",
    "204.5",
    "'201'",
    "'abc'",
    "''",
    "null",
    "undefined",
    "true",
    "[]",
    "[404]",
    "404n",
    "Symbol('s')",
    "{ valueOf() { return 202; } }",
    "{ valueOf() { return 1e9; } }",
    "{ valueOf() { throw new Error('valueOf'); } }",
    "{ toString() { return '203'; } }",
    "new Proxy({}, { get() { throw new Error('status trap'); } })",
];

const NAMES: &[&str] = &[
    "'x-a'",
    "'X-Upper'",
    "'set-cookie'",
    "'Set-Cookie'",
    "'content-type'",
    "''",
    "' '",
    "'x y'",
    "'x\\r\\ny'",
    "'x\\ny'",
    "'x\\0'",
    "'x\\u00e9'",
    "'\\u{1F389}'",
    "':authority'",
    "'content-length'",
    "'transfer-encoding'",
    "'connection'",
    "'x-'.repeat(3000)",
    "'x'.repeat(200000)",
    "'\\ud800'",
    "'a:b'",
    "'x\\tb'",
    "'!#$%&*+-.^_`|~'",
    "{ toString() { return 'x-obj'; } }",
    "{ toString() { throw new Error('name'); } }",
    "42",
    "Symbol('n')",
    "null",
];

const VALUES: &[&str] = &[
    "'v'",
    "''",
    "' padded '",
    "'a\\r\\nset-cookie: pwned=1'",
    "'a\\rb'",
    "'a\\nb'",
    "'a\\0b'",
    "'\\u00e9\\u{1F600}'",
    "'\\ud800'",
    "'a\\u0001b'",
    "'a\\u007fb'",
    "'x'.repeat(1000)",
    "'x'.repeat(70000)",
    "'x'.repeat(200000)",
    "'x'.repeat(10 << 20)",
    "{ toString() { return 'obj'; } }",
    "{ toString() { throw new Error('value'); } }",
    "1.5",
    "null",
    "undefined",
    "Symbol('v')",
    "[1, 2]",
];

fn name_value(r: &mut Rng) -> (String, String) {
    const GOOD_NAMES: &[&str] = &[
        "'x-a'",
        "'X-B'",
        "'set-cookie'",
        "'cache-control'",
        "'x-' + 'c'",
    ];
    const GOOD_VALUES: &[&str] = &[
        "'v'",
        "''",
        "'a=1; Path=/'",
        "'\\u00e9'",
        "' x '",
        "'x'.repeat(3000)",
    ];
    if r.chance(60) {
        return (
            r.pick(GOOD_NAMES).to_string(),
            r.pick(GOOD_VALUES).to_string(),
        );
    }
    let name = if r.chance(30) {
        // A random short name over a mixed alphabet.
        const ALPHA: &[char] = &['a', 'Z', '-', '_', '!', ' ', ':', '\u{e9}', '\u{2028}', '"'];
        let n = 1 + r.below(12);
        let s: String = (0..n).map(|_| ALPHA[r.below(ALPHA.len())]).collect();
        serde_json::to_string(&s).unwrap()
    } else {
        r.pick(NAMES).to_string()
    };
    (name, r.pick(VALUES).to_string())
}

fn headers(r: &mut Rng) -> String {
    let pairs =
        |r: &mut Rng| -> Vec<(String, String)> { (0..r.below(5)).map(|_| name_value(r)).collect() };
    match r.below(9) {
        0 => "undefined".into(),
        1 => {
            let p = pairs(r);
            let items: Vec<String> = p.iter().map(|(k, v)| format!("[{k}]: {v}")).collect();
            format!("{{ {} }}", items.join(", "))
        }
        2 => {
            let p = pairs(r);
            let items: Vec<String> = p.iter().map(|(k, v)| format!("[{k}, {v}]")).collect();
            format!("[{}]", items.join(", "))
        }
        3 | 4 => {
            let count = r.pick(&["1", "10", "255", "256", "257", "1000", "5000"]);
            let name = r.pick(&["'x-' + i", "'set-cookie'", "'x-dup'", "'X-' + i"]);
            let value = r.pick(&["'v'", "'v'.repeat(512)", "'v'.repeat(64 << 10)", "'c=' + i"]);
            format!("(() => {{ const h = new Headers(); for (let i = 0; i < {count}; i++) h.append({name}, {value}); return h; }})()")
        }
        5 => {
            let (k, v) = name_value(r);
            format!("new Map([[{k}, {v}]])")
        }
        6 => r
            .pick(&[
                "new Proxy({}, { ownKeys() { throw new Error('ownKeys'); } })",
                "new Proxy({ a: 1 }, { get() { return 'a\\r\\nb'; } })",
                "new Proxy({ 'x-p': 1 }, { get(t, k) { return k === Symbol.iterator ? undefined : 'v'; } })",
                "{ *[Symbol.iterator]() { yield ['a']; } }",
                "{ *[Symbol.iterator]() { for (;;) yield ['x-a', '1']; } }",
                "{ *[Symbol.iterator]() { yield { length: 2, 0: 'x-len', 1: 'v' }; } }",
                "{ [Symbol.iterator]: 1 }",
                "42",
                "'x-a: 1'",
                "null",
            ])
            .into(),
        7 => "Object.fromEntries(Array.from({ length: 300 }, (_, i) => ['x-' + i, 'v']))".into(),
        _ => {
            let (k, v) = name_value(r);
            format!("new Headers([[{k}, {v}]])")
        }
    }
}

const CHUNKS: &[&str] = &[
    "'chunk'",
    "''",
    "new Uint8Array([1, 2, 3])",
    "new DataView(new ArrayBuffer(3))",
    "new Float32Array(2)",
    "new BigInt64Array(1)",
    "new ArrayBuffer(5)",
    "detachedView()",
    "detachedBuffer()",
    "new SharedArrayBuffer(4)",
    "new Uint8Array(new SharedArrayBuffer(4))",
    "42",
    "null",
    "undefined",
    "{}",
    "'x'.repeat(BIG)",
    "new Uint8Array(BIG)",
    "new Proxy(new Uint8Array(2), {})",
    "{ toString() { throw new Error('chunk'); } }",
];

fn stream(r: &mut Rng) -> String {
    match r.below(6) {
        0 => {
            let chunks: Vec<&str> = (0..1 + r.below(4)).map(|_| r.pick(CHUNKS)).collect();
            let wait = r.pick(&["", "await null;", "await new Promise((r) => setTimeout(r, 1));"]);
            format!(
                "(() => {{ const chunks = [{}]; let i = 0; return new ReadableStream({{ async pull(c) {{ {wait} if (i >= chunks.length) return c.close(); c.enqueue(chunks[i++]); }} }}); }})()",
                chunks.join(", ")
            )
        }
        1 => format!(
            "new ReadableStream({{ start(c) {{ c.enqueue({}); c.close(); }} }})",
            r.pick(CHUNKS)
        ),
        2 => r
            .pick(&[
                "new ReadableStream({ start(c) { c.error(new Error('start')); } })",
                "new ReadableStream({ pull() { throw new Error('pull'); } })",
                "new ReadableStream({ pull() { return new Promise(() => {}); } })",
                "new ReadableStream({ start() { throw new Error('start threw'); } })",
                "new ReadableStream({ pull(c) { c.enqueue('x'); c.close(); c.enqueue('after close'); } })",
                "new ReadableStream(null)",
                "new ReadableStream({ get pull() { throw new Error('getter'); } })",
            ])
            .into(),
        3 => {
            // Many chunks of one reused buffer: more bytes in total than the budget.
            let n = r.pick(&["3", "40", "64"]);
            format!("(() => {{ const b = new Uint8Array(64 << 10).fill(65); let i = 0; return new ReadableStream({{ pull(c) {{ if (i++ >= {n} * 16) c.close(); else c.enqueue(b); }} }}); }})()")
        }
        4 => format!(
            "ReadableStream.from((async function* () {{ yield {}; yield {}; }})())",
            r.pick(CHUNKS),
            r.pick(CHUNKS)
        ),
        _ => "ReadableStream.from({ [Symbol.iterator]() { return { next() { return { done: false, value: 'loop' }; } }; } })".into(),
    }
}

const BODIES: &[&str] = &[
    "'text'",
    "''",
    "null",
    "undefined",
    "'\\ud800 lone'",
    "new Uint8Array([104, 105])",
    "new DataView(new ArrayBuffer(8))",
    "new DataView(new ArrayBuffer(8), 2, 3)",
    "new ArrayBuffer(16)",
    "detachedBuffer()",
    "detachedView()",
    "new SharedArrayBuffer(8)",
    "new Uint8Array(new SharedArrayBuffer(8))",
    "new Float64Array([1.5, NaN])",
    "new BigInt64Array(2)",
    "new Uint16Array(3)",
    "new Int8Array(new ArrayBuffer(8), 1, 2)",
    "{ toString() { throw new Error('toString'); } }",
    "{ toString() { return 'obj'; } }",
    "new Proxy({}, { get() { throw new Error('trap'); } })",
    "new Proxy(new Uint8Array(4), {})",
    "'x'.repeat(BIG)",
    "new Uint8Array(BIG)",
    "new ArrayBuffer(BIG)",
    "'x'.repeat(2 << 20)",
    "new Uint8Array(3 << 20)",
    "Symbol('b')",
    "12345n",
    "[1, 2, 3]",
    "new Date(0)",
];

/// Patches a tenant may make to the realm it shares with the runtime.
const PATCHES: &[&str] = &[
    "Array.prototype.push = function () { this.length = 0xFFFFFFFF; return 0; };",
    "Array.prototype[Symbol.iterator] = function* () { yield ['x-evil', 'a\\r\\nb']; };",
    "Object.defineProperty(Array.prototype, '0', { get() { return 'evil'; }, set() { throw new Error('set 0'); }, configurable: true });",
    "Object.defineProperty(Object.prototype, 'kind', { get() { return 'bytes'; }, configurable: true });",
    "Object.defineProperty(Object.prototype, 'status', { get() { return 9999; }, configurable: true });",
    "Object.defineProperty(Object.prototype, 'body', { get() { return new Uint8Array(3 << 20); }, configurable: true });",
    "Object.defineProperty(Object.prototype, 'json', { get() { return '{'; }, configurable: true });",
    "Object.defineProperty(Object.prototype, 'stream', { get() { return { read() { return 1; } }; }, configurable: true });",
    "Object.defineProperty(Object.prototype, 'done', { get() { return false; }, configurable: true });",
    "Object.defineProperty(Object.prototype, 'value', { get() { return 42; }, configurable: true });",
    "Map.prototype.get = () => ['evil\\r\\n'];",
    "Map.prototype.set = function () { return this; };",
    "Map.prototype.forEach = function (f) { for (let i = 0; i < 1000; i++) f(['v'], 'x-' + i); };",
    "Map.prototype.has = () => true; Map.prototype.delete = () => true;",
    "Object.defineProperty(Object.getPrototypeOf(Uint8Array.prototype), 'byteLength', { get() { return 1e9; }, configurable: true });",
    "Object.defineProperty(Uint8Array.prototype, 'length', { get() { return 1e9; }, configurable: true });",
    "Object.defineProperty(Uint8Array.prototype, 'buffer', { get() { return new SharedArrayBuffer(8); }, configurable: true });",
    "Object.defineProperty(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag, { get() { return 'Uint8Array'; }, configurable: true });",
    "Object.getPrototypeOf(Uint8Array.prototype).set = function () { throw new Error('set'); };",
    "JSON.stringify = () => { throw new Error('stringify'); };",
    "JSON.stringify = () => '{\"kind\":\"bytes\"}';",
    "Promise.prototype.then = function () { throw new Error('then'); };",
    "{ const then = Promise.prototype.then; Promise.prototype.then = function (a, b) { return then.call(this, b, a); }; }",
    "String.prototype.toLowerCase = () => 'Bad Name\\r\\n';",
    "RegExp.prototype.exec = () => null;",
    "Array.prototype.join = () => 'x\\r\\ny'; Array.prototype.sort = function () { this.length = 1e9; return this; };",
    "Function.prototype.call = function () { throw new Error('call'); }; Function.prototype.apply = function () { throw new Error('apply'); };",
    "Reflect.apply = () => { throw new Error('apply'); }; Reflect.construct = () => ({});",
    "Object.defineProperty = () => { throw new Error('defineProperty'); };",
    "Object.prototype.toString = () => '[object Uint8Array]';",
    "Error.captureStackTrace = () => { throw new Error('capture'); }; Object.defineProperty(Error.prototype, 'stack', { get() { throw new Error('stack'); }, configurable: true });",
    "globalThis.Uint8Array = function () { return {}; }; globalThis.ArrayBuffer = function () { return {}; };",
];

fn patches(r: &mut Rng) -> String {
    let n = match r.below(10) {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2 + r.below(2),
    };
    (0..n)
        .map(|_| r.pick(PATCHES))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One generated case: what it exercises and its source.
pub struct Case {
    /// `fetch` (the tenant is fetched) or `call` (its default export is called).
    pub fetch: bool,
    /// The response body is a `ReadableStream` (collected whole by `Tenant::fetch`).
    pub stream: bool,
    pub source: String,
}

/// The case `case` of run `seed`.
pub fn case(seed: u64, case: u64) -> Case {
    let mut r = Rng::for_case(seed, case);
    let patch = patches(&mut r);
    if r.chance(20) {
        return call_case(&mut r, &patch);
    }
    let valid = format!("{}", 200 + r.below(400));
    let status = if r.chance(50) {
        valid.as_str()
    } else {
        r.pick(STATUSES)
    };
    let headers = headers(&mut r);
    let streamed = r.chance(30);
    let body = if streamed {
        stream(&mut r)
    } else {
        r.pick(BODIES).to_string()
    };
    let make = match r.below(8) {
        0 => format!("Response.json({body}, {{ status: {status}, headers: {headers} }})"),
        1 => format!("Response.redirect('/x', {status})"),
        _ => format!("new Response({body}, {{ status: {status}, headers: {headers} }})"),
    };
    let post = r.pick(&[
        "",
        "",
        "",
        "try { const b = Object.getPrototypeOf(new Uint8Array(0)); } catch {}",
        "try { r.headers.set('x-late', 'a\\r\\nb'); } catch {}",
        "r.headers.append('set-cookie', 'late=1');",
        "try { r.body; } catch {}",
    ]);
    let source = format!(
        "{PRELUDE}\nexport default {{ async fetch(req) {{\n  if (!req.url.endsWith('/attack')) return PLAIN();\n  {patch}\n  const r = {make};\n  {post}\n  return r;\n}} }};\n"
    );
    Case {
        fetch: true,
        stream: streamed,
        source,
    }
}

const RESULTS: &[&str] = &[
    "'\\ud800'",
    "'a\\udc00b'",
    "{ s: '\\ud83d' }",
    "['\\udfff']",
    "NaN",
    "-0",
    "1e308",
    "Infinity",
    "1n",
    "undefined",
    "null",
    "Symbol('x')",
    "() => 1",
    "'x'.repeat(BIG)",
    "new Uint8Array([1, 2, 3])",
    "detachedView()",
    "new Uint8Array(new SharedArrayBuffer(4))",
    "new Uint8Array(BIG)",
    "new Float64Array(2)",
    "(() => { let v = 1; for (let i = 0; i < 200; i++) v = [v]; return v; })()",
    "(() => { const o = {}; o.o = o; return o; })()",
    "{ toJSON() { throw new Error('toJSON'); } }",
    "{ toJSON() { return '\\ud800'; } }",
    "new Proxy({}, { ownKeys() { throw new Error('ownKeys'); } })",
    "new Proxy([], { get(t, k) { return k === 'length' ? 1e9 : undefined; } })",
    "{ get a() { throw 1; } }",
    "new Date(NaN)",
    "new Map([[1, 2]])",
    "{ '\\ud800': 1 }",
    "new Response('not a fetch call')",
    "Promise.reject(new Error('rejected'))",
    "new Promise(() => {})",
];

fn call_case(r: &mut Rng, patch: &str) -> Case {
    let result = r.pick(RESULTS);
    let source = format!(
        "{PRELUDE}\nexport default async (mode) => {{\n  if (mode === 'plain') return 'plain-ok';\n  {patch}\n  return {result};\n}};\n"
    );
    Case {
        fetch: false,
        stream: false,
        source,
    }
}
