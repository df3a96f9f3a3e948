import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
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
    }), 30_000)

  it.effect("config check fails with the error on a bad file", () =>
    Effect.gen(function*() {
      const { code, stderr } = yield* cli("config", "check", "does-not-exist.yml")
      assert.strictEqual(code, 1)
      assert.include(stderr, "ConfigError (FileNotFound)")
      assert.include(stderr, "does-not-exist.yml")
    }), 30_000)
})
