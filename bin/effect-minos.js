#!/usr/bin/env node
// The effect-minos CLI. Sources are TypeScript; tsx loads them without a build step.
import { register } from "tsx/esm/api"

register()
await import("../src/runtime/main.ts")
