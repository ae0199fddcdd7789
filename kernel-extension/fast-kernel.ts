/**
 * `sense-fast`'s entry point: `node fast-kernel.js --config-path <connection file>`. The same
 * protocol core as every Sense kernel (core.ts) with the JavaScript engine only (js-engine.ts):
 * plain JavaScript, never a compiler, magics included. Kept so existing `sense-fast` kernelspecs
 * (local, Enterprise Gateway, sized) keep starting; see docs/kernels.md.
 */
import { main } from "./kernel";

if (require.main === module) main(process.argv.slice(2), "fast");
