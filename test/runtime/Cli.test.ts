import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Process from "../support/Process.ts"
import { binArgs } from "../support/Bin.ts"

const cli = (...args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
    execFile(process.execPath, [...binArgs, ...args], { env: { ...process.env, MINOS_REST_PORT: "" } }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (error.code as number) : 0, stdout, stderr }))
    })
  })

describe("effect-minos CLI", () => {
  it.effect("config check prints the resolved config with secrets redacted", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* cli("config", "check", "test/fixtures/minos-v1-config.yml")
      assert.strictEqual(code, 0)
      const json = JSON.parse(stdout)
      assert.strictEqual(json.service.name, "exam")
      assert.strictEqual(json.storage.postgres.password, "<redacted>")
      assert.notInclude(stdout, "min0s")
    }), 120_000)

  it.effect("config check fails with the error on a bad file", () =>
    Effect.gen(function*() {
      const { code, stderr } = yield* cli("config", "check", "does-not-exist.yml")
      assert.strictEqual(code, 1)
      assert.include(stderr, "ConfigError (FileNotFound)")
      assert.include(stderr, "does-not-exist.yml")
    }), 120_000)

  it.effect("help goes to stdout, lists every command, exits 0", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* cli("--help")
      assert.strictEqual(code, 0)
      for (const c of ["start", "config", "dead-letters", "new"]) assert.match(stdout, new RegExp(`^  ${c}\\s`, "m"))
      const start = yield* cli("start", "--help")
      assert.strictEqual(start.code, 0)
      assert.include(start.stdout, "--services")
      assert.include(start.stdout, "--entry")
    }), 120_000)

  it.effect("--version prints the package version", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* cli("--version")
      assert.strictEqual(code, 0)
      assert.include(stdout, JSON.parse(readFileSync("package.json", "utf8")).version)
    }), 120_000)

  it.effect("an unknown flag is an error that names it (nothing starts)", () =>
    Effect.gen(function*() {
      const { code, stdout, stderr } = yield* cli("start", "--servics")
      assert.strictEqual(code, 1)
      assert.include(stderr, "Unrecognized flag: --servics")
      assert.include(stderr, "--services")
      assert.notInclude(stdout + stderr, "ready at")
    }), 120_000)

  it.effect("an unknown command is an error", () =>
    Effect.gen(function*() {
      const { code, stderr } = yield* cli("strat")
      assert.strictEqual(code, 1)
      assert.include(stderr, "strat")
    }), 120_000)

  it.effect("new service: scaffolds the files, refuses a bad name and a non-empty folder", () =>
    Effect.gen(function*() {
      const dir = join(mkdtempSync(join(tmpdir(), "minos-new-")), "orders")
      const made = yield* cli("new", "service", "orders", "--dir", dir)
      assert.strictEqual(made.code, 0, made.stderr)
      for (const f of ["config.yml", "package.json", "README.md", "src/Order.ts", "src/OrderView.ts", "src/Handlers.ts", "src/main.ts", "test/Order.test.ts", "test/Service.test.ts"]) {
        assert.isTrue(existsSync(join(dir, f)), f)
      }
      const config = yield* cli("config", "check", join(dir, "config.yml"))
      assert.strictEqual(config.code, 0, config.stderr)
      assert.strictEqual(JSON.parse(config.stdout).service.name, "orders")
      const again = yield* cli("new", "service", "orders", "--dir", dir)
      assert.strictEqual(again.code, 1)
      assert.include(again.stderr, "not empty")
      const bad = yield* cli("new", "service", "Bad Name", "--dir", join(dir, "..", "bad"))
      assert.strictEqual(bad.code, 2)
      assert.isFalse(existsSync(join(dir, "..", "bad")))
    }), 120_000)

  it.live("rest.port 0 picks a free port and logs it", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "minos-port0-"))
      const config = join(dir, "config.yml")
      writeFileSync(config, [
        "version: effect-minos/1",
        "service:",
        "  name: exam",
        "  entry: examples/exam/main.ts",
        "rest:",
        "  host: 127.0.0.1",
        "  port: 0",
        "storage:",
        "  lmdb:",
        `    path: ${join(dir, "store")}`,
        "saga:",
        "  storage:",
        `    path: ${join(dir, "sagas.lmdb")}`
      ].join("\n"))
      const service = yield* Process.start([config], {})
      const port = Number(new URL(service.url).port)
      assert.isAbove(port, 0)
      assert.match(service.output(), new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`))
      const health = yield* Process.http("GET", `${service.url}/system/health`)
      assert.strictEqual(health.status, 200)
      assert.strictEqual(yield* service.stop(), 0)
    }).pipe(Effect.scoped), 60_000)
})
