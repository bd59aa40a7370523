import { register } from "node:module";

register("./wasm-module-hooks.js", import.meta.url);
