/**
 * The published shape: packs the package as `npm publish` would, installs the tarball into an app
 * outside the repository, type-checks the app with tsc (NodeNext) and runs it with plain node
 * through the installed `effect-minos` bin — no tsx, no source condition — then creates an exam
 * over HTTP. A broken exports map, a missing `.d.ts`, a `.ts` import left in dist/ or a bin that
 * needs the sources fails here.
 */
import { assert, describe, it } from "@effect/vitest"
import { afterAll } from "vitest"
import { Effect } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { freePort, http } from "../support/Process.ts"

const repo = resolve(".")

const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.callback<string, Error>((resume) => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false" } }, (error, stdout, stderr) => {
      if (error) resume(Effect.fail(new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${stdout}\n${stderr}`)))
      else resume(Effect.succeed(stdout))
    })
  })

const npm = process.platform === "win32" ? "npm.cmd" : "npm"

/** Starts the installed bin with plain node; resolves once the service logs its address. */
const startService = (cwd: string, port: number) =>
  Effect.acquireRelease(
    Effect.callback<{ url: string; child: ChildProcess }, Error>((resume) => {
      const child = spawn(process.execPath, [join(cwd, "node_modules", "effect-minos", "bin", "effect-minos.js"), "start", "config.yml"], {
        cwd,
        env: { ...process.env, MINOS_REST_PORT: String(port), NO_COLOR: "1", NODE_OPTIONS: "" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let out = ""
      let done = false
      const timer = setTimeout(() => {
        if (!done) {
          done = true
          child.kill("SIGKILL")
          resume(Effect.fail(new Error(`not ready in 60 s:\n${out}`)))
        }
      }, 60_000)
      const onData = (chunk: Buffer) => {
        out += chunk.toString()
        const m = /ready at (http:\/\/[^\s)]+)/.exec(out)
        if (m && !done) {
          done = true
          clearTimeout(timer)
          resume(Effect.succeed({ url: m[1]!, child }))
        }
      }
      child.stdout.on("data", onData)
      child.stderr.on("data", onData)
      child.once("exit", (code) => {
        if (!done) {
          done = true
          clearTimeout(timer)
          resume(Effect.fail(new Error(`exited with ${code} before ready:\n${out}`)))
        }
      })
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGTERM"))
  )

const work = mkdtempSync(join(tmpdir(), "effect-minos-pack-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

interface Packed {
  readonly tarball: string
  readonly files: ReadonlyArray<string>
}

// packed once for the tests of this file; npm pack runs `prepack` (the build) first
let packing: Promise<Packed> | undefined
const packed = Effect.suspend(() => {
  packing ??= Effect.runPromise(run(npm, ["pack", "--json", "--pack-destination", work], repo).pipe(Effect.map((out) => {
    const [info] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>
    return { tarball: join(work, info!.filename), files: info!.files.map((f) => f.path) }
  })))
  return Effect.promise(() => packing!)
})

describe("the packed package", () => {
  it.effect("installs into an app that tsc type-checks (NodeNext) and plain node runs", () =>
    Effect.gen(function*() {
      const { tarball, files } = yield* packed
      assert.include(files, "dist/index.js")
      assert.include(files, "dist/index.d.ts")
      assert.include(files, "dist/runtime/main.js")
      assert.include(files, "bin/effect-minos.js")
      assert.isFalse(files.some((f) => f.startsWith("test/") || f.startsWith("bench/") || f.startsWith("examples/")), "no tests, benchmarks or examples in the tarball")

      const app = join(work, "app")
      yield* run("mkdir", ["-p", app], work)
      for (const f of readdirSync(join(repo, "test/package/app"))) copyFileSync(join(repo, "test/package/app", f), join(app, f))
      writeFileSync(join(app, "package.json"), JSON.stringify({ name: "pack-test-app", private: true, type: "module" }))
      // the dependencies come from npm's cache when `npm ci` filled it
      yield* run(npm, ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball, "@types/node@22"], app)

      const tsc = join(repo, "node_modules/typescript/bin/tsc")
      yield* run(process.execPath, [tsc, "-p", "tsconfig.json"], app)
      // our own declarations are clean even without skipLibCheck (effect's and lmdb's are not, under NodeNext)
      const strict = yield* Effect.flip(run(process.execPath, [tsc, "-p", "tsconfig.json", "--noEmit", "--skipLibCheck", "false"], app)).pipe(
        Effect.map((e) => e.message),
        Effect.orElseSucceed(() => "")
      )
      assert.deepStrictEqual(strict.split("\n").filter((l) => l.includes("node_modules/effect-minos/")), [])

      // the root entry and a deep import load with plain node
      const loaded = yield* run(process.execPath, ["--input-type=module", "-e", "import * as M from 'effect-minos'; import { make } from 'effect-minos/domain/Entity'; console.log(typeof M.Repository.layer, typeof make)"], app)
      assert.strictEqual(loaded.trim(), "function function")
      // internal modules stay private
      const internal = yield* Effect.exit(run(process.execPath, ["--input-type=module", "-e", "await import('effect-minos/lmdb/internal/Env')"], app))
      assert.strictEqual(internal._tag, "Failure")

      const port = yield* freePort
      const service = yield* startService(app, port)
      const base = service.url.replace("0.0.0.0", "127.0.0.1")
      const created = yield* http("POST", `${base}/exams`, { title: "Algebra" })
      assert.strictEqual(created.status, 201, JSON.stringify(created.body))
      const got = yield* http("GET", `${base}/exams/${created.body.uuid}`)
      assert.strictEqual(got.status, 200)
      assert.strictEqual(got.body.title, "Algebra")
    }).pipe(Effect.scoped), 300_000)

  it.effect("`effect-minos new service` from the installed bin scaffolds a service whose own tests pass", () =>
    Effect.gen(function*() {
      const { tarball } = yield* packed
      const host = join(work, "host")
      yield* run("mkdir", ["-p", host], work)
      writeFileSync(join(host, "package.json"), JSON.stringify({ name: "host", private: true, type: "module" }))
      yield* run(npm, ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], host)
      const bin = join(host, "node_modules", "effect-minos", "bin", "effect-minos.js")
      const out = yield* run(process.execPath, [bin, "new", "service", "room-bookings", "--dir", join(work, "room-bookings")], host)
      assert.include(out, "created room-bookings (aggregate RoomBooking)")
      // a second run refuses to overwrite
      const again = yield* Effect.flip(run(process.execPath, [bin, "new", "service", "room-bookings", "--dir", join(work, "room-bookings")], host))
      assert.include(again.message, "is not empty")

      const service = join(work, "room-bookings")
      // its package.json names effect-minos by version; the tarball stands in for the registry here
      yield* run(npm, ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], service)
      yield* run(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", "."], service)
      const tested = yield* run(npm, ["test"], service)
      assert.match(tested, /# pass 4/)
      assert.match(tested, /# fail 0/)
    }), 300_000)
})
