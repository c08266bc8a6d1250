import { burn } from "./common.js";
export default { fetch() { return new Response(String(burn())); } };
