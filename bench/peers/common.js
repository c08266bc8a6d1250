// Shared by every handler and every runtime (isola, Deno, workerd, node): the
// 10 KB JSON transform, the fixed 1 ms CPU task, the source the TypeScript
// handler transpiles.

// The request body of the JSON handler: 40 items, about 10 KB as JSON.
export function payload() {
  const items = [];
  for (let i = 0; i < 40; i++) {
    items.push({
      id: i,
      name: `item number ${i} of the benchmark payload`,
      price: (i * 7.31) % 97,
      qty: (i % 5) + 1,
      tags: ["alpha", "beta", "gamma", "delta"].slice(0, (i % 4) + 1),
      meta: { created: 1700000000000 + i * 86400000, owner: `user-${i % 9}`, note: "x".repeat(75) },
    });
  }
  return { order: "bench-0001", currency: "EUR", items };
}

// The JSON transform: per item a derived record, plus totals.
export function transform(doc) {
  let total = 0;
  const lines = doc.items.map((it) => {
    const amount = Math.round(it.price * it.qty * 100) / 100;
    total += amount;
    return { id: it.id, name: it.name.toUpperCase(), amount, tags: it.tags.join(","), owner: it.meta.owner };
  });
  return { order: doc.order, currency: doc.currency, count: lines.length, total: Math.round(total * 100) / 100, lines };
}

// The CPU task: a fixed amount of integer work (no clock: workerd freezes time
// during a request), about 1 ms on the reference machine once optimised. The
// work is split into calls of 1000 iterations: one loop of 750k iterations per
// request runs through on-stack replacement on every call, and newer V8 (Deno
// 2.9, workerd, isola) then ran it at 4-8 ms per request under load (node 20:
// 1.3 ms), which measured V8's tiering rather than the runtime.
export const BURN_ITERS = 750_000;
function mix(h, from, to) {
  for (let i = from; i < to; i++) h = Math.imul(h ^ (i & 0xff), 16777619);
  return h;
}
export function burn(n = BURN_ITERS) {
  let h = -2128831035;
  for (let i = 0; i < n; i += 1000) h = mix(h, i, Math.min(i + 1000, n));
  return h >>> 0;
}

// What the TypeScript handler transpiles on each request.
export const TS_SOURCE = "interface P { x: number; y: number }\nexport const norm = (p: P): number => Math.hypot(p.x, p.y);\nenum E { A, B }\nexport default class C<T> { constructor(private v: T) {} get(): T { return this.v; } }\n";
