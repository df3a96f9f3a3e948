/**
 * Where the exam service's idle RSS goes: the same memory report (bench/probe/MemoryReport.mjs, RSS,
 * V8 heap, external, code) from processes that add one layer at a time, each idle for
 * MEMORY_REPORT_MS (default 8 s) after start-up:
 *
 *   node alone → + tsx loader → + `effect` and our storage/runtime modules imported →
 *   bare server (LMDB) → exam service (LMDB + in-process broker) → exam service (PostgreSQL + Kafka)
 *
 *   node --conditions=effect-minos-source --import tsx bench/probe/RssProbe.ts
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { serviceEnv } from "../http/HttpBench.ts"
import { dropSchemas } from "../StorageBench.ts"
import { Effect } from "effect"

const dir = mkdtempSync(join(tmpdir(), "probe-rss-"))
const wait = Number(process.env["MEMORY_REPORT_MS"] ?? 8000)
const runId = `rss${Date.now().toString(36)}`
const schemas: Array<string> = []

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

const measure = async (name: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const file = join(dir, `${name.replace(/\W+/g, "-")}.json`)
  const child = spawn(process.execPath, ["--conditions=effect-minos-source", "--import", "./bench/probe/MemoryReport.mjs", ...args], {
    env: { ...process.env, ...env, MEMORY_REPORT_FILE: file, MEMORY_REPORT_MS: String(wait) },
    stdio: ["ignore", "ignore", "inherit"]
  })
  const deadline = Date.now() + wait + 60_000
  while (!existsSync(file) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200))
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once("exit", r))
    child.kill("SIGTERM")
    await exited
  }
  const report = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { error: "no report" }
  console.log(`${name.padEnd(48)} ${JSON.stringify(report)}`)
}

const idle = join(dir, "idle.ts")
writeFileSync(idle, "setInterval(() => undefined, 1000)\n")
const imports = join(dir, "imports.ts")
writeFileSync(imports, `import "${process.cwd()}/node_modules/effect/dist/index.js"\nimport "${process.cwd()}/src/runtime/Microservice.ts"\nimport "${process.cwd()}/examples/exam/main.ts"\nsetInterval(() => undefined, 1000)\n`)

await measure("node alone", ["-e", "setInterval(() => undefined, 1000)"])
await measure("node + tsx", ["--import", "tsx", idle])
await measure("node + tsx + effect + framework + exam imported", ["--import", "tsx", imports])
await measure("bare server, LMDB", ["--import", "tsx", "bench/http/BareServer.ts", String(await freePort()), "lmdb", join(dir, "bare")])
for (const backend of ["lmdb", "postgres"] as const) {
  const port = await freePort()
  const schema = `probe_rss_${backend}_${runId}`
  schemas.push(schema)
  await measure(`exam service, ${backend}`, ["--import", "tsx", "src/runtime/main.ts", "start", "config.yml"], serviceEnv({ backend, runId }, port, dir, schema, true))
  const quiet = await freePort()
  await measure(`exam service, ${backend}, relay+consumer off`, ["--import", "tsx", "src/runtime/main.ts", "start", "config.yml"], serviceEnv({ backend, runId }, quiet, dir, `${schema}q`, false))
  schemas.push(`${schema}q`)
}
await Effect.runPromise(dropSchemas(schemas))
rmSync(dir, { recursive: true, force: true })
