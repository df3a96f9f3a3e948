/**
 * Every `effect-minos` command the README and docs/ show is run here: each command path once for
 * real (in a temporary folder, exit code and output checked), and each documented line's flags are
 * checked against that command's own `--help`. A command added to the docs without a run below, or a
 * flag the CLI does not have, fails this test. `npm run <script>` mentions must be package scripts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { binArgs } from "../support/Bin.ts"
import * as Process from "../support/Process.ts"

const docs = ["README.md", ...readdirSync("docs").filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)]
const text = docs.map((f) => readFileSync(f, "utf8")).join("\n")

/** The subcommand paths of the CLI (`sagas show`, `dead-letters replay`, …). */
const paths = [
  "start", "config check", "dead-letters list", "dead-letters replay", "projections list", "projections rebuild",
  "sagas list", "sagas show", "sagas history", "sagas cancel", "sagas retry", "sagas resume", "new service"
]

/** Each documented invocation: its command path and the flags it shows. */
const documented = [...text.matchAll(/(?:npx effect-minos|npm run cli --|`effect-minos)\s+([a-z][^`\n#|]*)/g)]
  .map((m) => m[1]!.trim())
  .filter((line) => !line.startsWith("…") && !line.startsWith("<command>"))
  .map((line) => {
    const words = line.split(/\s+/)
    const path = paths.find((p) => words.slice(0, p.split(" ").length).join(" ") === p)
      ?? (words[0] === "sagas" ? "sagas list" : words[0] === "config" ? "config check" : words[0] === "projections" ? "projections list" : words[0] === "dead-letters" ? "dead-letters list" : undefined)
    return { line, path, flags: [...line.matchAll(/(?:^|[\s[])(--[a-z][a-z-]*)/g)].map((f) => f[1]!) }
  })

const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.callback<{ code: number; out: string; stdout: string }>((resume) => {
    execFile(process.execPath, [...binArgs, ...args], { env: { ...process.env, ...env, NO_COLOR: "1" } }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (error.code as number) : 0, out: stdout + stderr, stdout }))
    })
  })

const dir = mkdtempSync(join(tmpdir(), "docs-commands-"))
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

/** One real run per command path. */
const runs: Record<string, (url: string) => Effect.Effect<void>> = {
  "config check": () => Effect.map(cli(["config", "check", "test/fixtures/minos-v2-quickstart.yml"]), (r) => {
    assert.strictEqual(r.code, 0, r.out)
    assert.strictEqual(JSON.parse(r.stdout).service.name, "foo")
  }),
  "dead-letters list": () => Effect.map(cli(["dead-letters", "list", config, "--topic", "ExamCreated"]), (r) => {
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, "0 dead letter(s)")
  }),
  "dead-letters replay": () => Effect.map(cli(["dead-letters", "replay", "all", config]), (r) => {
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, "replayed 0 dead letter(s)")
  }),
  "projections list": () => Effect.map(cli(["projections", "list", config]), (r) => {
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, "projection(s)")
  }),
  "projections rebuild": () => Effect.map(cli(["projections", "rebuild", "Nope", config, "--detach"]), (r) => {
    assert.strictEqual(r.code, 1, r.out)
    assert.include(r.out, "No projection Nope")
  }),
  "new service": () => Effect.map(cli(["new", "service", "orders", "--dir", join(dir, "orders")]), (r) => {
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, "created orders (aggregate Order)")
  }),
  "sagas list": (url) => Effect.map(cli(["sagas", "list", "--url", url, "--status", "finished"]), (r) => {
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, "0 execution(s)")
  }),
  "sagas show": (url) => Effect.map(cli(["sagas", "show", "00000000-0000-4000-8000-000000000000", "--url", url]), (r) => {
    assert.strictEqual(r.code, 1, r.out)
    assert.include(r.out, "NotFound")
  })
}
for (const verb of ["history", "cancel", "retry", "resume"]) {
  runs[`sagas ${verb}`] = (url) => Effect.map(cli(["sagas", verb, "00000000-0000-4000-8000-000000000000", "--url", url]), (r) => {
    assert.strictEqual(r.code, 1, r.out)
  })
}

describe("the commands in the docs", () => {
  it("every documented command names a command of the CLI, and each has a run here", () => {
    assert.isAbove(documented.length, 5)
    for (const d of documented) assert.isDefined(d.path, `docs show an unknown command: effect-minos ${d.line}`)
    for (const p of new Set(documented.map((d) => d.path!))) {
      assert.isTrue(p === "start" || p in runs, `no run for the documented command ${p}`)
    }
  })

  it.effect("each documented line's flags are flags of its command", () =>
    Effect.gen(function*() {
      const helps = new Map<string, string>()
      for (const d of documented) {
        if (d.flags.length === 0) continue
        if (!helps.has(d.path!)) helps.set(d.path!, (yield* cli([...d.path!.split(" "), "--help"])).stdout)
        for (const flag of d.flags) {
          // `--servics` is shown as the example of a refused flag
          if (flag === "--servics") continue
          assert.include(helps.get(d.path!)!, flag, `effect-minos ${d.line}: ${d.path} has no ${flag}`)
        }
      }
    }), 120_000)

  it.live("each documented command runs", () =>
    Effect.gen(function*() {
      // start: the service of this folder's config (a free port), which the sagas commands then talk to
      const service = yield* Process.start([config], {})
      assert.match(service.output(), /ready at http:\/\/127\.0\.0\.1:\d+/)
      for (const p of Object.keys(runs).filter((p) => p.startsWith("sagas"))) yield* runs[p]!(service.url)
      assert.strictEqual(yield* service.stop(), 0)
      // the storage commands open the store the service left (one process per LMDB folder)
      for (const p of Object.keys(runs).filter((p) => !p.startsWith("sagas"))) yield* runs[p]!("")
      const refused = yield* cli(["start", "--servics"])
      assert.strictEqual(refused.code, 1)
    }).pipe(Effect.scoped), 480_000)

  it("every `npm run` script the docs mention exists", () => {
    const scripts = Object.keys(JSON.parse(readFileSync("package.json", "utf8")).scripts as object)
    for (const m of text.matchAll(/npm run ([a-z][a-z:-]*)/g)) assert.include(scripts, m[1], `npm run ${m[1]}`)
  })
})
