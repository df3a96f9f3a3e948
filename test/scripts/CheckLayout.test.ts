import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { check, readTree, resolveExport } from "../../scripts/check-layout.mjs"

const exportsMap = JSON.parse(readFileSync("package.json", "utf8")).exports as Record<string, unknown>

describe("check-layout", () => {
  it("finds no violation in the tree", () => {
    assert.deepStrictEqual(check(readTree("."), exportsMap), [])
  })

  it("refuses an engine that reads the config, a backend that imports another, and a reach into internal/", () => {
    const problems = check(new Map([
      ["src/messaging/Relay.ts", `import { MinosConfig } from "../config/MinosConfig.ts"`],
      ["src/kafka/K.ts", `import { make } from "../memory/MemoryBroker.ts"`],
      ["src/saga/S.ts", `import { chainOf } from "../postgres/internal/Chain.ts"`],
      ["src/domain/D.ts", `import type { Broker } from "../broker/Broker.ts"`]
    ]))
    assert.strictEqual(problems.length, 5)
    assert.isTrue(problems.some((p) => p.includes("messaging/ (engine) must not import config/")))
    assert.isTrue(problems.some((p) => p.includes("kafka/ (backend) must not import memory/ (backend)")))
    assert.isTrue(problems.some((p) => p.includes("reaches into postgres/internal/")))
    assert.isTrue(problems.some((p) => p.includes("saga/ (engine) must not import postgres/ (backend)")))
    assert.isTrue(problems.some((p) => p.includes("domain/ (pure) must not import broker/")))
  })

  it("refuses a cycle between folders and an example that imports src/", () => {
    const problems = check(new Map([
      ["src/eventstore/A.ts", `import { x } from "../snapshot/B.ts"`],
      ["src/snapshot/B.ts", `import { y } from "../eventstore/A.ts"`],
      ["examples/shop/main.ts", `import { Repository } from "../../src/command/Repository.ts"`]
    ]))
    assert.isTrue(problems.some((p) => p.startsWith("folder cycle")))
    assert.isTrue(problems.some((p) => p.includes("examples import the package by name")))
  })

  it("refuses an exports map that exposes an internal module", () => {
    const files = new Map([["src/postgres/internal/Chain.ts", ""]])
    assert.deepStrictEqual(check(files, { "./*": "./src/*.ts" }).length, 1)
    assert.deepStrictEqual(check(files, exportsMap), [])
    assert.strictEqual(resolveExport(exportsMap, "./postgres/internal/Chain"), null)
    assert.strictEqual(resolveExport(exportsMap, "./postgres/Postgres"), "./src/postgres/Postgres.ts")
    assert.strictEqual(resolveExport(exportsMap, "./postgres/Postgres", ["node", "import"]), "./dist/postgres/Postgres.js")
    assert.strictEqual(resolveExport(exportsMap, "./postgres/Postgres", ["types", "import"]), "./dist/postgres/Postgres.d.ts")
    assert.strictEqual(resolveExport(exportsMap, "./lmdb/internal/Env", ["types", "import"]), null)
    // a conditional target exposes an internal module when any one condition does
    const leaky = { "./*": { "effect-minos-source": "./src/*.ts", default: "./dist/*.js" }, "./postgres/internal/*": { types: null, "effect-minos-source": "./src/postgres/internal/*.ts" } }
    assert.strictEqual(check(files, leaky).length, 1)
  })
})
