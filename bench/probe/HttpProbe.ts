/**
 * One HTTP load against one server, with a CPU profile of that server (start-up left out): the exam
 * service or the bare server (bench/http/BareServer.ts), on LMDB + in-process broker or PostgreSQL +
 * Kafka, as the `http` bench group starts them.
 *
 *   SIDE=service|bare BACKEND=lmdb|postgres ROUTE=GET|POST C=16 SECONDS=10 RELAY=on|off \
 *     node --conditions=effect-minos-source --import tsx bench/probe/HttpProbe.ts
 *
 * Prints the rate and the profile summary (bench/probe/ProfileSummary.ts) and copies the profile to
 * the OS temp dir. PostgreSQL schemas it creates are dropped at the end.
 */
import { Effect } from "effect"
import { copyFileSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, type Latencies, load, seed, serviceEnv, startServer } from "../http/HttpBench.ts"
import { tempDir } from "../LmdbBench.ts"
import { dropSchemas } from "../StorageBench.ts"
import { summarise } from "./ProfileSummary.ts"

const side = process.env["SIDE"] ?? "service"
const backend = (process.env["BACKEND"] ?? "lmdb") as "lmdb" | "postgres"
const route = (process.env["ROUTE"] ?? "GET") as "GET" | "POST"
const connections = Number(process.env["C"] ?? 16)
const seconds = Number(process.env["SECONDS"] ?? 10)
const relay = (process.env["RELAY"] ?? "on") === "on"
const runId = `probe${Date.now().toString(36)}`
const schema = `probe_http_${runId}`

const program = Effect.scoped(Effect.gen(function*() {
  const dir = yield* tempDir("probe-http-")
  const profiles = join(dir, "prof")
  const port = yield* Effect.promise(freePort)
  const spawned = performance.now()
  const server = side === "bare"
    ? yield* startServer("bare", ["bench/http/BareServer.ts", String(port), backend, backend === "lmdb" ? join(dir, "bare") : schema, "10"], {}, port, dir,
      "/exams/00000000-0000-0000-0000-000000000000", ["--cpu-prof", `--cpu-prof-dir=${profiles}`])
    : yield* startServer("service", ["src/runtime/main.ts", "start", "config.yml"], serviceEnv({ backend, runId }, port, dir, schema, relay), port, dir, "/system/health", [
      "--cpu-prof",
      `--cpu-prof-dir=${profiles}`
    ])
  const ids = yield* seed(server, 100)
  yield* Effect.sleep("2 seconds")
  const latencies: Latencies = { p50: [], p99: [], errors: 0 }
  const skipMs = performance.now() - spawned
  const out = yield* load(server, route, connections, ids, latencies, []).run(seconds * 1000)
  const count = typeof out === "object" && out !== null ? out.count : 0
  const rate = typeof out === "object" && out !== null ? Math.round((out.count * 1000) / out.ms) : 0
  console.log(`${side} ${backend} ${route} ${connections} conn.${relay ? "" : " (relay+consumer off)"}: ${rate} req/s, p50 ${latencies.p50[0]} ms, p99 ${latencies.p99[0]} ms, errors ${latencies.errors}, RSS ${server.rssMiB()} MiB`)
  yield* server.stop
  const file = readdirSync(profiles).find((f) => f.endsWith(".cpuprofile"))
  if (file === undefined) return console.log(`no profile written in ${profiles}; log: ${readFileSync(server.log, "utf8").slice(-1000)}`)
  const kept = join(tmpdir(), `minos-http-${side}-${backend}-${route}-${connections}${relay ? "" : "-norelay"}.cpuprofile`)
  copyFileSync(join(profiles, file), kept)
  console.log(`profile: ${kept}`)
  // the profile's clock starts when the process does; leave out start-up and seeding
  console.log(summarise(JSON.parse(readFileSync(join(profiles, file), "utf8")), 30, skipMs + 500, count))
}))

Effect.runPromise(Effect.ensuring(program, backend === "postgres" ? dropSchemas([schema]) : Effect.void)).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
