#!/usr/bin/env node
// The effect-minos CLI. It imports the CLI through the package's own exports map, so the same file
// runs the built JavaScript (dist/) when installed and the TypeScript sources in this repository
// when started with `node --conditions=effect-minos-source --import tsx bin/effect-minos.js`.
await import("effect-minos/runtime/main")
