/**
 * Running a service as a process (`effect-minos start`, see `StartCommand`), and how every CLI
 * command runs as the process (`runMain`).
 *
 * - Loads the config (`MINOS_CONFIGURATION_FILE_PATH` or `./config.yml` by default); `--services`
 *   switches storage and broker to PostgreSQL + Kafka (as `MINOS_STORAGE_BACKEND=postgres
 *   MINOS_BROKER_BACKEND=kafka` would).
 * - Imports the entry module (`--entry`, else `service.entry` from the config); its default export is
 *   the service layer (`Microservice.layer(...)`).
 * - Logs one line when ready, with the HTTP address; one clear line when it cannot start (exit 1).
 * - SIGTERM / SIGINT: stops intake, lets in-flight work finish, flushes the outbox, closes
 *   connections and exits 0.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import * as MinosConfig from "../config/MinosConfig.ts"
import type { RouteError } from "../router/Router.ts"
import { httpAddress, type StartupError } from "./Microservice.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface StartOptions {
  readonly config?: string | undefined
  readonly entry?: string | undefined
  /** PostgreSQL + Kafka instead of the embedded backends. */
  readonly services?: boolean | undefined
}

/**
 * Builds the service and keeps it running until interrupted.
 *
 * @category constructors
 * @since 0.1.0
 */
export const serve = <E>(service: Layer.Layer<unknown, E, MinosConfig.MinosConfig>, settings: MinosConfig.Settings) =>
  Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(service.pipe(Layer.provide(MinosConfig.layerSettings(settings))))
    const address = httpAddress(context)
    const where = Option.isSome(address) ? ` at ${address.value.url}` : ""
    const storage = settings.storage.backend === "lmdb" ? `LMDB ${settings.storage.path}` : `PostgreSQL ${settings.storage.postgres.host}:${settings.storage.postgres.port}/${settings.storage.postgres.database}`
    const broker = settings.broker.backend === "memory" ? "in-process broker" : `Kafka ${settings.broker.brokers.join(",")}`
    yield* Effect.logInfo(`${settings.service.name} ready${where} (${storage}, ${broker})`)
    return yield* Effect.never
  }))

/**
 * Loads config and entry; the effect `main` runs.
 *
 * @category constructors
 * @since 0.1.0
 */
export const program = (options: StartOptions) =>
  Effect.gen(function*() {
    const env = options.services === true
      ? { ...process.env, MINOS_STORAGE_BACKEND: process.env["MINOS_STORAGE_BACKEND"] || "postgres", MINOS_BROKER_BACKEND: process.env["MINOS_BROKER_BACKEND"] || "kafka" }
      : process.env
    const settings = yield* MinosConfig.load(options.config ?? MinosConfig.defaultPath(env), { env })
    const entry = options.entry ?? settings.service.entry
    if (entry === undefined) {
      return yield* Effect.fail(new MinosConfig.ConfigError({ reason: "InvalidValue", file: settings.source.file, path: "service.entry", detail: "No service entry: pass --entry <module> or set service.entry" }))
    }
    const module = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(resolve(entry)).href) as Promise<{ default?: unknown }>,
      catch: (e) => new MinosConfig.ConfigError({ reason: "InvalidValue", file: settings.source.file, path: "service.entry", detail: `Cannot load ${entry}: ${(e as Error).message}` })
    })
    if (!Layer.isLayer(module.default)) {
      return yield* Effect.fail(new MinosConfig.ConfigError({ reason: "InvalidValue", file: settings.source.file, path: "service.entry", detail: `${entry} has no default export of a service layer` }))
    }
    // a dynamic import is untyped: the entry's default export is a `Microservice.layer(...)`
    return yield* serve(module.default as ServiceLayer, settings)
  })

/**
 * What an entry module exports: a service as `Microservice.layer` builds it.
 *
 * @category models
 * @since 0.1.0
 */
export type ServiceLayer = Layer.Layer<unknown, StartupError | RouteError | MinosConfig.ConfigError, MinosConfig.MinosConfig>

export { Failed, runMain } from "./internal/Process.ts"
