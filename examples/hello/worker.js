// A tenant handler in the Workers style: `isola run examples/hello/worker.js --request '{"url":"http://x/"}'`.
export default {
  async fetch(request, env, ctx) {
    const started = Date.now();
    console.log(`${request.method} ${request.url}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
    return Response.json({
      hello: env.name ?? "world",
      url: request.url,
      tookMs: Date.now() - started,
    });
  },
};
