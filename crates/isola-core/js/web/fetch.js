// web/fetch.js: the global fetch() (WHATWG Fetch, as a server runtime has
// it). A lazy area (snapshot.rs LAZY_SOURCES): it runs on the first use of
// `fetch`, after tenant code, so every built-in comes from the primordials.
//
// The request is built with the runtime's Request, its body read whole, and
// handed to the native `fetchStart` (runtime/ops_fetch.rs), which checks the
// tenant's fetch policy and caps and passes it to the host's HTTP client.
// The host resolves the name, refuses non-public addresses unless allowed,
// follows redirects (re-checking each hop) and returns the whole response.
//
// Divergences from the spec (as other server runtimes):
// - No CORS, credentials, cache modes or referrer: `mode`, `credentials`,
//   `cache`, `referrer` and `integrity` in the init are ignored.
// - The response body is collected whole (up to fetch.max_response_bytes and
//   the ArrayBuffer budget) before fetch() resolves; `response.body` then
//   streams it from memory.
// - redirect: "manual" returns the 3xx response itself (type "basic", not
//   an opaque-redirect filtered response), as Workers and Deno do.
// - Host-controlled headers (Host, Content-Length, Connection,
//   Transfer-Encoding and other hop-by-hop headers) are set by the client.
(function fetchArea(ops, P, web) {
  "use strict";
  const { Promise, TypeError, append, newArray } = P;
  const settle = P.settle;
  const http = web.__http;
  const abort = web.__abort;
  const Request = web.Request;
  const Response = web.Response;
  const NULL_BODY = [101, 103, 204, 205, 304];
  const REDIRECTS = [301, 302, 303, 307, 308];

  function fetch(input, init = undefined) {
    return new Promise((resolve, reject) => {
      let request;
      try {
        request = new Request(input, init);
      } catch (e) {
        reject(e);
        return;
      }
      const signal = http.signalOf(request);
      if (signal !== null && abort.aborted(signal)) {
        reject(abort.reason(signal));
        return;
      }
      const method = request.method;
      const bodyPromise = http.take(request);
      settle(bodyPromise, (bytes) => send(request, method, bytes, signal, resolve, reject), reject);
    });
  }

  function send(request, method, bytes, signal, resolve, reject) {
    if (bytes !== null && (method === "GET" || method === "HEAD")) {
      reject(new TypeError(`fetch: a ${method} request cannot have a body`));
      return;
    }
    const flat = newArray();
    http.forEachLine(http.headersOf(request), (name, value) => {
      append(flat, name);
      append(flat, value);
    });
    const mode = request.redirect;
    let pending;
    try {
      pending = ops.fetchStart(method, request.url, flat, bytes, mode === "follow");
    } catch (e) {
      reject(e);
      return;
    }
    let token;
    if (signal !== null) {
      token = abort.add(signal, () => {
        ops.fetchAbort(pending);
        reject(abort.reason(signal));
      });
    }
    settle(
      pending,
      (rec) => {
        if (signal !== null && token !== undefined) abort.remove(signal, token);
        if (mode === "error" && P.ArrayPrototypeIndexOf(REDIRECTS, rec.status) >= 0) {
          reject(new TypeError(`fetch: ${request.url} redirected, and the request's redirect mode is "error"`));
          return;
        }
        const nullBody = method === "HEAD" || P.ArrayPrototypeIndexOf(NULL_BODY, rec.status) >= 0;
        let response;
        try {
          response = new Response(nullBody ? null : rec.body, {
            status: rec.status,
            statusText: rec.statusText,
            headers: http.fromFlat(rec.headers),
          });
        } catch (e) {
          reject(e);
          return;
        }
        resolve(http.fetched(response, rec.url, rec.redirected));
      },
      (e) => {
        if (signal !== null && token !== undefined) abort.remove(signal, token);
        reject(e);
      },
    );
  }

  web.fetch = fetch;
});
