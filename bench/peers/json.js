import { transform } from "./common.js";
export default {
  async fetch(req) {
    return new Response(JSON.stringify(transform(await req.json())), { headers: { "content-type": "application/json" } });
  },
};
