/**
 * Start-up as a process: one clear line and exit 1 for what cannot start; a dependency that comes up
 * late is waited for.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { binArgs } from "../support/Bin.ts"
import { mkdtempSync, writeFileSync } from "node:fs"
import { createServer, connect, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, http, start } from "../support/Process.ts"
import { describePostgres, postgres } from "../support/Services.ts"

/** Runs `effect-minos start …` to its exit; resolves to the exit code and the output. */
const runToExit = (args: ReadonlyArray<string>, env: Record<string, string>, timeoutMs = 60_000) =>
  Effect.promise(() =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [...binArgs, "start", ...args], { env: { ...process.env, ...env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      child.stdout.on("data", (c) => (out += c))
      child.stderr.on("data", (c) => (out += c))
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
      child.once("exit", (code) => {
        clearTimeout(timer)
        resolve({ code, out })
      })
    })
  )

const dataEnv = () => {
  const dir = mkdtempSync(join(tmpdir(), "startup-"))
  return { MINOS_STORAGE_LMDB_PATH: join(dir, "exam"), MINOS_SAGA_STORAGE_PATH: join(dir, "sagas.lmdb") }
}

describe("effect-minos start", () => {
  it.live("a bad config: one line naming the key, exit 1", () =>
    Effect.gen(function*() {
      const r = yield* runToExit(["config.yml"], { ...dataEnv(), MINOS_REST_PORT: "http" })
      assert.strictEqual(r.code, 1)
      const lines = r.out.split("\n").filter((l) => l.includes("cannot start"))
      assert.strictEqual(lines.length, 1, r.out)
      assert.include(lines[0], "rest.port")
      assert.include(lines[0], "MINOS_REST_PORT")
      assert.notInclude(r.out, "    at ")
    }), 60_000)

  it.live("a port in use: one line naming HTTP, exit 1", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const blocker: Server = createServer()
      yield* Effect.promise(() => new Promise<void>((r) => blocker.listen(port, "0.0.0.0", () => r())))
      const r = yield* runToExit(["config.yml"], { ...dataEnv(), MINOS_REST_PORT: String(port) })
      blocker.close()
      assert.strictEqual(r.code, 1)
      assert.match(r.out, /cannot start: HTTP: Cannot listen on 0\.0\.0\.0:\d+/)
    }), 60_000)

  it.live("no entry module: a clear config error", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "noentry-"))
      const file = join(dir, "c.yml")
      writeFileSync(file, "version: effect-minos/1\nservice:\n  name: nothing\n")
      const r = yield* runToExit([file], {})
      assert.strictEqual(r.code, 1)
      assert.include(r.out, "service.entry")
    }), 60_000)
})

describePostgres("start-up with PostgreSQL", () => {
  it.live("an unreachable PostgreSQL: bounded waiting, then one line saying what to do", () =>
    Effect.gen(function*() {
      const dead = yield* freePort
      const r = yield* runToExit(["config.yml"], {
        ...dataEnv(),
        MINOS_STORAGE_BACKEND: "postgres",
        MINOS_STORAGE_POSTGRES_HOST: "127.0.0.1",
        MINOS_STORAGE_POSTGRES_PORT: String(dead),
        MINOS_STARTUP_RETRIES: "2",
        MINOS_STARTUP_RETRY_DELAY_MS: "200"
      })
      assert.strictEqual(r.code, 1)
      assert.match(r.out, /cannot start: PostgreSQL: PostgreSQL at 127\.0\.0\.1:\d+ does not answer after 3 attempts/)
      assert.include(r.out, "services:up")
    }), 60_000)

  it.live("a PostgreSQL that comes up late is waited for", () =>
    Effect.scoped(Effect.gen(function*() {
      const port = yield* freePort
      // a TCP relay to the real server, opened only once the service says it is waiting
      let proxy: Server | undefined
      const openProxy = (output: string) => {
        if (proxy !== undefined || !output.includes("waiting for PostgreSQL")) return
        proxy = createServer((socket) => {
          const upstream = connect({ host: postgres.host, port: postgres.port })
          socket.pipe(upstream).pipe(socket)
          socket.on("error", () => upstream.destroy())
          upstream.on("error", () => socket.destroy())
        })
        // a little later, so the service goes on waiting for a while
        setTimeout(() => proxy!.listen(port, "127.0.0.1"), 1_500)
      }
      yield* Effect.addFinalizer(() => Effect.sync(() => proxy?.close()))
      const service = yield* start(["config.yml"], {
        ...dataEnv(),
        MINOS_REST_PORT: String(yield* freePort),
        MINOS_STORAGE_BACKEND: "postgres",
        MINOS_STORAGE_POSTGRES_HOST: "127.0.0.1",
        MINOS_STORAGE_POSTGRES_PORT: String(port),
        MINOS_STORAGE_POSTGRES_SCHEMA: `late_${Date.now().toString(36)}`,
        MINOS_STARTUP_RETRY_DELAY_MS: "500"
      }, 60_000, openProxy)
      assert.include(service.output(), "waiting for PostgreSQL")
      const created = yield* http("POST", `${service.url}/exams`, { title: "Late", subject: "late", durationMinutes: 10 })
      assert.strictEqual(created.status, 201)
      const code = yield* service.stop("SIGTERM")
      assert.strictEqual(code, 0)
    })), 60_000)
})
