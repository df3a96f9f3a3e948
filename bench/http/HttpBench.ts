/**
 * HTTP benchmark: the exam service (`examples/exam`, started as `effect-minos start` would, through
 * `Microservice.layer`) against a bare `node:http` server doing the same storage work on the same
 * backend (bench/http/BareServer.ts), each in its own child process, under autocannon load from this
 * process: `POST /exams` and `GET /exams/:uuid`, 1/16/64 connections, alternating timed rounds.
 *
 * Backends: embedded (LMDB + in-process broker) and services (PostgreSQL + Kafka). Each side gets a
 * fresh LMDB folder or PostgreSQL schema. After the main cases the service is restarted with its
 * relay and consumer off (`components.relay/consumer: false`) and measured again, to show their
 * cost. RSS of both processes is read idle (after start-up settled) and after the load.
 *
 * Between rounds each side is left to settle (its CPU use falls below ~5 %), so the relay and
 * consumer work a POST round leaves behind is not billed to the next round of the other side.
 */
import autocannon from "autocannon"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, openSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { type Case, type Measure, type Metric, percentile, type Timed } from "../Harness.ts"
import { tempDir } from "../LmdbBench.ts"

export type Backend = "lmdb" | "postgres"

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

/** A server in a child process (`node --import tsx …`), its output in a log file. */
export interface Server {
  readonly name: string
  readonly url: string
  readonly pid: number
  readonly log: string
  /** Resident set size now, in MiB. */
  readonly rssMiB: () => number
  /** CPU time used so far (user + system), in ms. */
  readonly cpuMs: () => number
  /** Bytes written to storage so far (`write_bytes` of /proc/<pid>/io). */
  readonly writtenBytes: () => number
  readonly stop: Effect.Effect<void>
}

const procStat = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
const rssMiB = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))
  return Math.round(Number(line?.replace(/\D+/g, "") ?? 0) / 1024)
}
// utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second)
const cpuMs = (pid: number) => {
  const f = procStat(pid)
  return (Number(f[11]) + Number(f[12])) * 10
}

const writtenBytes = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/io`, "utf8").split("\n").find((l) => l.startsWith("write_bytes:"))
  return Number(line?.replace(/\D+/g, "") ?? 0)
}

const get = (url: string) =>
  fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0)

/**
 * Starts `args` under node + tsx (with the `effect-minos-source` condition) with `env`; ready when `readyPath` answers (any HTTP status), or,
 * with an empty `readyPath`, when the process printed `ready`.
 */
export const startServer = (
  name: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  port: number,
  dir: string,
  readyPath: string,
  nodeArgs: ReadonlyArray<string> = []
) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<Server> => {
      const log = join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}.log`)
      const fd = openSync(log, "a")
      // in-repo runs resolve `effect-minos/…` (the examples' imports) to the sources
      const child: ChildProcess = spawn(process.execPath, [...nodeArgs, "--conditions=effect-minos-source", "--import", "tsx", ...args], {
        env: { ...process.env, ...env },
        stdio: ["ignore", fd, fd]
      })
      closeSync(fd)
      const url = `http://127.0.0.1:${port}`
      const exited = new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? -1)))
      const started = performance.now()
      for (;;) {
        if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before it was ready; see ${log}:\n${readFileSync(log, "utf8").slice(-2000)}`)
        if (readyPath === "" ? /^ready$/m.test(readFileSync(log, "utf8")) : (await get(url + readyPath)) !== 0) break
        if (performance.now() - started > 180_000) {
          child.kill("SIGKILL")
          throw new Error(`${name} not ready after 180 s; the end of its log:\n${readFileSync(log, "utf8").slice(-2000)}`)
        }
        await new Promise((r) => setTimeout(r, 200))
      }
      const pid = child.pid!
      return {
        name,
        url,
        pid,
        log,
        rssMiB: () => rssMiB(pid),
        cpuMs: () => cpuMs(pid),
        writtenBytes: () => writtenBytes(pid),
        stop: Effect.promise(async () => {
          if (child.exitCode !== null) return
          child.kill("SIGTERM")
          const timeout = setTimeout(() => child.kill("SIGKILL"), 20_000)
          await exited
          clearTimeout(timeout)
        })
      }
    }),
    (s) => s.stop
  )

/**
 * Waits until `servers` are quiet for two 250 ms windows in a row: under ~5 % CPU and under 64 KiB
 * written to storage (LMDB commits are fsync-bound, so a relay or consumer draining a backlog can be
 * busy on the disk with little CPU; socket writes, such as Kafka fetches, do not count). At most 15 s.
 */
export const settle = (servers: ReadonlyArray<Server>) =>
  Effect.promise(async () => {
    const deadline = performance.now() + 15_000
    const sample = () => servers.map((s) => ({ cpu: s.cpuMs(), writes: s.writtenBytes() }))
    let last = sample()
    let quiet = 0
    for (;;) {
      await new Promise((r) => setTimeout(r, 250))
      const now = sample()
      const busy = now.some((c, i) => c.cpu - last[i]!.cpu > 12 || c.writes - last[i]!.writes > 65_536)
      last = now
      quiet = busy ? 0 : quiet + 1
      if (quiet >= 2 || performance.now() > deadline) return
    }
  })

export interface Latencies {
  readonly p50: Array<number>
  readonly p99: Array<number>
  errors: number
}

const body = JSON.stringify({ title: "Algebra", subject: "math", durationMinutes: 90 })

/** POST or GET load for `ms` with `connections`; GETs cycle through `ids`. */
export const load = (server: Server, route: "POST" | "GET", connections: number, ids: ReadonlyArray<string>, latencies: Latencies, settleFirst: ReadonlyArray<Server>): Measure => ({
  run: (ms) =>
    Effect.gen(function*() {
      yield* settle(settleFirst)
      return yield* Effect.promise(() =>
        new Promise<Timed>((resolve, reject) => {
          let i = 0
          const options: autocannon.Options = route === "POST"
            ? { url: `${server.url}/exams`, method: "POST", body, headers: { "content-type": "application/json" } }
            : {
              url: `${server.url}/exams/${ids[0]}`,
              requests: [{ method: "GET", setupRequest: (req) => ({ ...req, path: `/exams/${ids[i++ % ids.length]}` }) }]
            }
          const started = performance.now()
          autocannon({ ...options, connections, duration: ms / 1000 }, (error, result) => {
            if (error) return reject(error)
            const elapsed = performance.now() - started
            latencies.p50.push(result.latency.p50)
            latencies.p99.push(result.latency.p99)
            latencies.errors += result.non2xx + result.errors + result.timeouts
            resolve({ count: result.requests.total - result.non2xx, ms: elapsed })
          })
        })
      )
    })
})

/** Creates `n` exams on `server` (untimed) and returns their ids, for the GET cases. */
export const seed = (server: Server, n: number) =>
  Effect.promise(async () => {
    const ids: Array<string> = []
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${server.url}/exams`, { method: "POST", body, headers: { "content-type": "application/json" } })
      if (res.status !== 201) throw new Error(`${server.name}: POST /exams answered ${res.status}: ${await res.text()}`)
      ids.push(((await res.json()) as { uuid: string }).uuid)
    }
    return ids
  })

export interface HttpOptions {
  readonly backend: Backend
  readonly runId: string
  readonly quick: boolean
  /** PostgreSQL schemas this group creates (the caller drops them at the end). */
  readonly schemas: Array<string>
  readonly runAll: (cases: ReadonlyArray<Case>) => Effect.Effect<Array<import("../Harness.ts").Result>, unknown>
}

/** Env overrides that run the exam example on `backend` in `dir` / `schema`. */
export const serviceEnv = (o: Pick<HttpOptions, "backend" | "runId">, port: number, dir: string, schema: string, background: boolean): Record<string, string> => ({
  MINOS_SERVICE_NAME: `exambench${o.runId}${background ? "" : "q"}`,
  MINOS_REST_HOST: "127.0.0.1",
  MINOS_REST_PORT: String(port),
  MINOS_SAGA_STORAGE_PATH: join(dir, `sagas-${port}.lmdb`),
  ...(o.backend === "lmdb"
    ? { MINOS_STORAGE_BACKEND: "lmdb", MINOS_STORAGE_LMDB_PATH: join(dir, `exam-${port}`), MINOS_BROKER_BACKEND: "memory" }
    : {
      MINOS_STORAGE_BACKEND: "postgres",
      MINOS_STORAGE_POSTGRES_HOST: process.env["MINOS_TEST_PG_HOST"] ?? "127.0.0.1",
      MINOS_STORAGE_POSTGRES_DATABASE: process.env["MINOS_TEST_PG_DATABASE"] ?? "minos_test",
      MINOS_STORAGE_POSTGRES_SCHEMA: schema,
      MINOS_BROKER_BACKEND: "kafka",
      MINOS_BROKER_BROKERS: process.env["MINOS_TEST_KAFKA_BROKERS"] ?? "127.0.0.1:9092"
    }),
  ...(background ? {} : { MINOS_COMPONENTS_RELAY: "false", MINOS_COMPONENTS_CONSUMER: "false" })
})

/** The exam service's PostgreSQL pool size in config.yml, which the bare server copies. */
const POOL = "10"

/** One backend's HTTP cases and RSS figures. */
export const httpGroup = (o: HttpOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const dir = yield* tempDir(`bench-http-${o.backend}-`)
    const group = `http ${o.backend === "lmdb" ? "LMDB+in-process" : "PostgreSQL+Kafka"}`
    const schema = (side: string) => {
      const s = `bench_http_${side}_${o.runId}`
      o.schemas.push(s)
      return s
    }
    const barePort = yield* Effect.promise(freePort)
    const bare = yield* startServer(`bare-${o.backend}`, [
      "bench/http/BareServer.ts",
      String(barePort),
      o.backend,
      ...(o.backend === "lmdb" ? [join(dir, "bare")] : [schema("bare"), POOL])
    ], {}, barePort, dir, "/exams/00000000-0000-0000-0000-000000000000")
    const start = (background: boolean) =>
      Effect.gen(function*() {
        const port = yield* Effect.promise(freePort)
        return yield* startServer(`exam-${o.backend}${background ? "" : "-no-relay"}`, ["src/runtime/main.ts", "start", "config.yml"],
          serviceEnv(o, port, dir, schema(background ? "svc" : "svcq"), background), port, dir, "/system/health")
      })

    const results: Array<import("../Harness.ts").Result> = []
    const metrics: Array<Metric> = []
    const latency: Record<string, { ours: Latencies; bare: Latencies }> = {}
    const ms = o.quick ? 1000 : 2000
    const connectionsList = o.quick ? [16] : [1, 16, 64]

    const casesFor = (service: Server, label: string, connections: ReadonlyArray<number>, ids: { svc: ReadonlyArray<string>; bare: ReadonlyArray<string> }, goal: boolean) =>
      (["POST", "GET"] as const).flatMap((route) =>
        connections.map((c): Case => {
          const name = `${route} ${route === "POST" ? "/exams" : "/exams/:uuid"}${label}, ${c} conn.`
          const l = { ours: { p50: [], p99: [], errors: 0 }, bare: { p50: [], p99: [], errors: 0 } }
          latency[`${group}: ${name}`] = l
          return {
            group,
            name,
            ops: ms,
            warmupOps: o.quick ? 300 : 500,
            unit: "request",
            ours: load(service, route, c, ids.svc, l.ours, [service, bare]),
            raw: load(bare, route, c, ids.bare, l.bare, [service, bare]),
            peer: "bare node:http",
            ...(goal && c === 16 ? { goalRatio: 0.5 } : {})
          }
        })
      )

    // the service with everything on, as `effect-minos start` runs it
    yield* Effect.scoped(Effect.gen(function*() {
      const service = yield* start(true)
      yield* settle([service, bare])
      yield* Effect.sleep("2 seconds")
      const idle = { ours: service.rssMiB(), bare: bare.rssMiB() }
      const ids = { svc: yield* seed(service, 100), bare: yield* seed(bare, 100) }
      results.push(...(yield* o.runAll(casesFor(service, "", connectionsList, ids, true))))
      yield* settle([service, bare])
      metrics.push(
        { group, name: "exam service RSS, idle", value: idle.ours, unit: "MiB", peerValue: idle.bare, peer: "bare node:http", goal: "<150 MiB", met: idle.ours < 150 },
        { group, name: "exam service RSS, after the HTTP load", value: service.rssMiB(), unit: "MiB", peerValue: bare.rssMiB(), peer: "bare node:http", goal: "<250 MiB", met: service.rssMiB() < 250 }
      )
    }))

    // again with the service's own relay and consumer off
    const quiet = [1, 16].filter((c) => connectionsList.includes(c))
    if (quiet.length > 0) {
      yield* Effect.scoped(Effect.gen(function*() {
        const service = yield* start(false)
        yield* settle([service, bare])
        const ids = { svc: yield* seed(service, 100), bare: yield* seed(bare, 100) }
        results.push(...(yield* o.runAll(casesFor(service, " (relay+consumer off)", quiet, ids, false))))
      }))
    }
    const summary = Object.fromEntries(Object.entries(latency).filter(([, l]) => l.ours.p50.length > 0).map(([k, l]) => [k, {
      oursP50Ms: percentile(l.ours.p50, 50),
      oursP99Ms: percentile(l.ours.p99, 50),
      bareP50Ms: percentile(l.bare.p50, 50),
      bareP99Ms: percentile(l.bare.p99, 50),
      errors: l.ours.errors + l.bare.errors
    }]))
    for (const [k, v] of Object.entries(summary)) if (v.errors > 0) console.log(`  ${k}: ${v.errors} non-2xx/errors/timeouts`)
    return { results, metrics, latency: summary }
  }))
