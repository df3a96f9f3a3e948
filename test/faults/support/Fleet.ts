/**
 * The example services as separate processes that a fault may kill and start again: each
 * `Service` keeps its config (port, schema, saga store) across restarts, so a restarted process
 * finds the state its predecessor left. Every process still running is killed with the scope.
 */
import { Clock, Effect, Ref, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { binArgs } from "../../support/Bin.ts"
import * as PrivatePg from "./PrivatePg.ts"
import * as Topics from "./Topics.ts"

export interface Service {
  readonly name: string
  readonly url: string
  readonly port: number
  /** Starts the process and waits for its "ready" line (fails after `timeoutMs`). */
  readonly start: (timeoutMs?: number) => Effect.Effect<void, Error>
  /** Sends `signal` and waits for the exit; nothing when it is not running. */
  readonly stop: (signal?: NodeJS.Signals) => Effect.Effect<void>
  readonly running: Effect.Effect<boolean>
  /** Everything the current and earlier processes printed (the last 2 MB). */
  readonly output: () => string
  /** How many processes were started. */
  readonly starts: Effect.Effect<number>
  /** Milliseconds from spawn to "ready", per start. */
  readonly startTimes: Effect.Effect<ReadonlyArray<number>>
}

const keep = 2 * 1024 * 1024

export interface ServiceOptions {
  readonly name: string
  /** `config.yml` (exam) or `examples/rooms/config.yml`. */
  readonly config: string
  readonly port: number
  readonly database: string
  readonly schema: string
  /** The service name (consumer group, reply topic); unique per run on a shared broker. */
  readonly serviceName: string
  readonly env?: Readonly<Record<string, string>>
  /** Kafka bootstrap addresses (default: the suite's single broker). */
  readonly brokers?: ReadonlyArray<string>
}

/** A service process under the scope; not started yet. */
export const service = (options: ServiceOptions): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const current = yield* Ref.make<ChildProcess | undefined>(undefined)
    const starts = yield* Ref.make(0)
    const startTimes = yield* Ref.make<ReadonlyArray<number>>([])
    const sagaDir = mkdtempSync(join(tmpdir(), `faults-${options.name}-saga-`))
    let out = ""
    const env = {
      ...process.env,
      ...PrivatePg.serviceEnv(options.database, options.schema),
      MINOS_BROKER_BACKEND: "kafka",
      MINOS_BROKER_BROKERS: (options.brokers ?? Topics.brokers).join(","),
      MINOS_SERVICE_NAME: options.serviceName,
      MINOS_REST_HOST: "127.0.0.1",
      MINOS_REST_PORT: String(options.port),
      MINOS_SAGA_STORAGE_PATH: join(sagaDir, "sagas.lmdb"),
      // come back quickly after a fault, and give up within the test's bounds
      MINOS_STARTUP_RETRIES: "60",
      MINOS_STARTUP_RETRY_DELAY_MS: "500",
      MINOS_BROKER_QUEUE_RETRY_BACKOFF_MS: "50",
      MINOS_BROKER_QUEUE_POLL_INTERVAL_MS: "200",
      NO_COLOR: "1",
      KAFKAJS_NO_PARTITIONER_WARNING: "1",
      ...options.env
    }
    const stop = (signal: NodeJS.Signals = "SIGKILL") =>
      Effect.flatMap(Ref.get(current), (child) =>
        child === undefined || child.exitCode !== null || child.signalCode !== null
          ? Effect.void
          : Effect.callback<void>((resume) => {
            child.once("exit", () => resume(Effect.void))
            child.kill(signal)
          }))
    // the processes' output is kept for a look after the run
    yield* Effect.addFinalizer(() =>
      Effect.andThen(stop("SIGKILL"), Effect.sync(() => {
        mkdirSync(".cache/faults", { recursive: true })
        writeFileSync(`.cache/faults/${options.serviceName}.log`, out)
      })))
    const start = (timeoutMs = 90_000) =>
      Effect.gen(function*() {
        yield* stop("SIGKILL")
        yield* Ref.update(starts, (n) => n + 1)
        const child = spawn(process.execPath, [...binArgs, "start", options.config], { env, stdio: ["ignore", "pipe", "pipe"] })
        yield* Ref.set(current, child)
        const t0 = yield* Clock.currentTimeMillis
        yield* Effect.callback<void, Error>((resume) => {
          let done = false
          const finish = (result: Effect.Effect<void, Error>) => {
            if (done) return
            done = true
            clearTimeout(timer)
            resume(result)
          }
          const timer = setTimeout(() => finish(Effect.fail(new Error(`${options.name} not ready in ${timeoutMs} ms:\n${out.slice(-4000)}`))), timeoutMs)
          // this process's first lines, where its "ready" line is
          let head = ""
          const onData = (chunk: Buffer) => {
            const text = chunk.toString()
            out += text
            if (out.length > keep) out = out.slice(-keep)
            if (!done && head.length < 1_000_000) {
              head += text
              if (/ ready at http/.test(head)) finish(Effect.void)
            }
          }
          child.stdout!.on("data", onData)
          child.stderr!.on("data", onData)
          child.once("exit", (code, signal) => finish(Effect.fail(new Error(`${options.name} exited (${code ?? signal}) before ready:\n${out.slice(-4000)}`))))
        })
        const t1 = yield* Clock.currentTimeMillis
        yield* Ref.update(startTimes, (ts) => [...ts, t1 - t0])
      })
    return {
      name: options.name,
      url: `http://127.0.0.1:${options.port}`,
      port: options.port,
      start,
      stop,
      running: Effect.map(Ref.get(current), (c) => c !== undefined && c.exitCode === null && c.signalCode === null),
      output: () => out,
      starts: Ref.get(starts),
      startTimes: Ref.get(startTimes)
    } satisfies Service
  })

/** A short id for the names of one run (schemas, service names, groups). */
export const runId = (): string => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`

/** Ports of the fault suite's services: 18282 and up, one pair per fault. */
export const ports = (fault: number): { readonly exam: number; readonly rooms: number } => ({ exam: 18282 + 2 * fault, rooms: 18283 + 2 * fault })
