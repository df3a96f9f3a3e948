/**
 * One microservice, composed from its config: storage (PostgreSQL or LMDB), broker (Kafka or
 * in-process), the request/reply client, the user's own services, the routes, and the background
 * parts — consumer + inbox, outbox relay, periodic jobs, HTTP server — each a scoped fiber.
 *
 * ```ts
 * const Exam = Microservice.layer({
 *   handlers: [Router.command("CreateExam", …), Router.rest("POST", "/exams", …)],
 *   services: Exams.layer            // your repositories, read models, sagas
 * })
 * Exam.pipe(Layer.provide(MinosConfig.layerFile("config.yml")), Layer.launch, NodeRuntime.runMain)
 * ```
 *
 * Dependencies that come up late are waited for (`startup.retries` × `startup.retry_delay_ms`), with a
 * log line naming them; anything that cannot start fails with one `StartupError` saying what to do.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Option, Redacted, Ref, Schedule, Schema } from "effect"
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { connect } from "node:net"
import { Broker } from "../broker/Broker.ts"
import type * as Aggregate from "../domain/Aggregate.ts"
import * as KafkaBroker from "../kafka/KafkaBroker.ts"
import * as MemoryBroker from "../memory/MemoryBroker.ts"
import * as Replies from "../messaging/Replies.ts"
import * as RequestClient from "../messaging/RequestClient.ts"
import { MinosConfig, type PostgresSettings, type Settings, type TlsSettings } from "../config/MinosConfig.ts"
import * as DiscoveryLayer from "../discovery/DiscoveryLayer.ts"
import * as Health from "../http/Health.ts"
import * as HttpServer from "../http/HttpServer.ts"
import { EventStore } from "../eventstore/EventStore.ts"
import * as Consumer from "../messaging/Consumer.ts"
import * as OutboxRelay from "../messaging/OutboxRelay.ts"
import type * as Projection from "../projection/Projection.ts"
import * as ProjectionRunner from "../projection/ProjectionRunner.ts"
import type { Handler, Middleware } from "../router/Router.ts"
import * as Router from "../router/Router.ts"
import * as Scheduler from "../router/Scheduler.ts"
import * as SagaRoutes from "./SagaRoutes.ts"
import * as SystemRoutes from "./SystemRoutes.ts"
import * as LmdbSagaStore from "../lmdb/LmdbSagaStore.ts"
import * as PgSagaStore from "../postgres/PgSagaStore.ts"
import type * as Saga from "../saga/Saga.ts"
import * as SagaManager from "../saga/SagaManager.ts"
import { SagaStore } from "../saga/SagaStore.ts"
import * as Transactional from "../saga/Transactional.ts"
import * as Lmdb from "../lmdb/Lmdb.ts"
import * as Postgres from "../postgres/Postgres.ts"
import type * as Storage from "../storage/Storage.ts"
import { UnitOfWork } from "../storage/UnitOfWork.ts"
import { mapError } from "./internal/layers.ts"

/**
 * What a service could not start, and what to do about it.
 *
 * @category errors
 * @since 0.1.0
 */
export class StartupError extends Schema.TaggedError<StartupError>()("StartupError", {
  dependency: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * The services the framework provides to the user's services and handlers.
 *
 * @category models
 * @since 0.1.0
 */
export type Infrastructure = Storage.Services | Broker | Replies.Replies | RequestClient.RequestClient | MinosConfig

/**
 * @category models
 * @since 0.1.0
 */
export interface Definition<Hs extends ReadonlyArray<Handler>, S, E> {
  readonly handlers: Hs
  readonly middleware?: ReadonlyArray<Middleware>
  /** The user's services (repositories, read models, sagas…), built on the infrastructure. */
  readonly services?: Layer.Layer<S, E, Infrastructure>
  /** The aggregates whose domain events it publishes, described in `/spec/asyncapi`. */
  readonly aggregates?: ReadonlyArray<Pick<Aggregate.Aggregate.Any, "name" | "published">>
  /** The commands and queries it sends to other services beside its sagas' remote steps (contracts), for `/spec/asyncapi`. */
  readonly sends?: ReadonlyArray<Router.SentMessage>
  /** Saga definitions this service coordinates (see `SagaManager`). */
  readonly sagas?: ReadonlyArray<Saga.Definition.Any>
  /**
   * Read models fed by aggregate events (`Projection.make`): inline ones run in the repositories'
   * transactions, local ones follow the event log, remote ones consume their topics.
   */
  readonly projections?: ReadonlyArray<Projection.Projection.Any>
  /** Extra background parts that need the infrastructure and the user's services. */
  readonly background?: Layer.Layer<never, E, Infrastructure | S | Router.Routes | SagaManager.SagaManager>
}

const answers = (host: string, port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(2_000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const hostPort = (address: string, defaultPort: number) => {
  const i = address.lastIndexOf(":")
  return i < 0 ? { host: address, port: defaultPort } : { host: address.slice(0, i), port: Number(address.slice(i + 1)) }
}

/**
 * Waits until one of `addresses` accepts connections (`startup.retries` × `startup.retry_delay_ms`),
 * logging what it waits for.
 */
const waitFor = (dependency: string, addresses: ReadonlyArray<{ readonly host: string; readonly port: number }>, hint: string) =>
  Effect.gen(function*() {
    const config = yield* MinosConfig
    const where = addresses.map((a) => `${a.host}:${a.port}`).join(",")
    const attempts = yield* Ref.make(0)
    const probe = Effect.gen(function*() {
      const attempt = yield* Ref.getAndUpdate(attempts, (n) => n + 1)
      const up = yield* Effect.forEach(addresses, (a) => answers(a.host, a.port), { concurrency: "unbounded" })
      if (up.some((ok) => ok)) return
      if (attempt === 0 || attempt % 10 === 0) {
        yield* Effect.logWarning(`waiting for ${dependency} at ${where} (attempt ${attempt + 1}/${config.startup.retries + 1}). ${hint}`)
      }
      return yield* Effect.fail(attempt)
    })
    yield* probe.pipe(
      Effect.retry(Schedule.spaced(Duration.millis(config.startup.retryDelayMs)).pipe(Schedule.upTo({ times: config.startup.retries }))),
      Effect.catch((attempt) =>
        Effect.fail(new StartupError({ dependency, message: `${dependency} at ${where} does not answer after ${attempt + 1} attempts. ${hint}` }))
      )
    )
  })

/** The PEM files a TLS setting names, read now; a missing file fails the start with what to fix. */
const readTls = (dependency: string, key: string, tls: TlsSettings | undefined) =>
  Effect.gen(function*() {
    if (tls === undefined) return undefined
    const read = (what: string, file: string | undefined) =>
      file === undefined
        ? Effect.succeed(undefined)
        : Effect.tryPromise({
          try: () => readFile(file, "utf8"),
          catch: (e) => new StartupError({ dependency, message: `Cannot read ${key}.${what} (${file}): ${(e as Error).message}`, cause: e })
        })
    const ca = yield* read("ca_file", tls.caFile)
    const cert = yield* read("cert_file", tls.certFile)
    const keyPem = yield* read("key_file", tls.keyFile)
    return {
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(keyPem === undefined ? {} : { key: Redacted.make(keyPem) }),
      ...(tls.serverName === undefined ? {} : { serverName: tls.serverName })
    }
  })

/** The PostgreSQL adapter's options for the configured connection (TLS files read). */
const pgOptions = (pg: PostgresSettings, key: string) =>
  Effect.map(readTls("PostgreSQL", `${key}.tls`, pg.tls), (ssl): Postgres.PostgresOptions => {
    const { tls: _tls, ...rest } = pg
    return ssl === undefined ? rest : { ...rest, ssl }
  })

const pgHint = "Start it (`docker compose up -d` or `npm run services:up`) or check storage.postgres in the config."
const kafkaHint = "Start it (`docker compose up -d` or `npm run services:up`) or check broker.brokers (or broker.host/port) in the config."

/**
 * The folder the in-process broker keeps its log in: next to the LMDB storage
 * (`<storage.path>-broker`), or `./data/<service name>-broker` when the storage is PostgreSQL.
 *
 * @since 0.1.0
 */
export const memoryBrokerPath = (config: Pick<Settings, "storage" | "service">): string => {
  const storage = config.storage
  if (storage.backend === "lmdb") {
    const path = storage.path.replace(/[\\/]+$/, "")
    if (path !== "") return `${path}-broker`
  }
  return `./data/${config.service.name.replace(/[^A-Za-z0-9._-]/g, "_")}-broker`
}

/**
 * The storage bundle the config selects.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerStorage: Layer.Layer<Storage.Services, StartupError, MinosConfig> = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* MinosConfig
    if (config.storage.backend === "lmdb") {
      const path = config.storage.path
      const lmdb: Layer.Layer<Storage.Services, StartupError> = mapError(Lmdb.layer({ path, mapSize: config.storage.mapSize }), (e) =>
        new StartupError({ dependency: "LMDB", message: `Cannot open the LMDB store at ${path}: ${e.message}`, cause: e }))
      return lmdb
    }
    const pg = config.storage.postgres
    yield* waitFor("PostgreSQL", [pg], pgHint)
    const options = yield* pgOptions(pg, "storage.postgres")
    return mapError(Postgres.layerStorage(options), (e) =>
      new StartupError({ dependency: "PostgreSQL", message: `PostgreSQL ${pg.user}@${pg.host}:${pg.port}/${pg.database} refused the connection or the migration (${e.reason._tag}: ${e.message}). ${pgHint}`, cause: e }))
  })
)

/**
 * The broker the config selects: the in-process one persisted next to the storage
 * ({@link memoryBrokerPath}), or Kafka.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerBroker: Layer.Layer<Broker, StartupError, MinosConfig> = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* MinosConfig
    if (config.broker.backend === "memory") {
      return mapError(MemoryBroker.layer({ persistence: { path: memoryBrokerPath(config) } }), (e) =>
        new StartupError({ dependency: "Broker", message: `Cannot open the in-process broker's log: ${e.message}`, cause: e }))
    }
    const kafka = config.broker
    const brokers = kafka.brokers
    // any one listed broker that answers is enough to start
    yield* waitFor("Kafka", brokers.map((b) => hostPort(b, 9092)), kafkaHint)
    const tls = yield* readTls("Kafka", "broker.tls", kafka.tls)
    return mapError(KafkaBroker.layer({
      brokers,
      clientId: kafka.clientId,
      partitions: kafka.partitions,
      replicationFactor: kafka.replicationFactor,
      tls,
      sasl: kafka.sasl
    }), (e) =>
      new StartupError({ dependency: "Kafka", message: `Kafka at ${brokers.join(",")}: ${e.message}. ${kafkaHint}`, cause: e }))
  })
)

/**
 * The request/reply client of the configured service.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerRequestClient: Layer.Layer<RequestClient.RequestClient, StartupError, MinosConfig | Broker | Replies.Replies> = Layer.unwrap(
  Effect.map(MinosConfig, (config) =>
    mapError(RequestClient.layer({ service: config.service.name }), (e) =>
      new StartupError({ dependency: "Kafka", message: `Cannot read the reply topic: ${e.message}`, cause: e })))
)

/**
 * Storage, broker, replies and the request/reply client.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerInfrastructure: Layer.Layer<Exclude<Infrastructure, MinosConfig>, StartupError, MinosConfig> = layerRequestClient.pipe(
  Layer.provideMerge(Layer.mergeAll(layerStorage, layerBroker, Replies.layer))
)

/**
 * Health checks of the infrastructure: the storage answers a read, the broker a ping.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerHealth: Layer.Layer<Health.Health, never, EventStore | Broker> = Layer.effect(
  Health.Health,
  Effect.gen(function*() {
    const events = yield* EventStore
    const broker = yield* Broker
    return Health.make([
      { name: "storage", check: events.head },
      { name: "broker", check: broker.ping }
    ])
  })
)

/**
 * Executions stored by the previous saga manager (a separate saga store at `saga.storage`): ended
 * ones stay there (readable with the previous version); unfinished ones cannot be continued by the
 * new manager, which keeps executions in the service's own storage, so the service refuses to start
 * and says what to do.
 */
const checkLegacySagas: Effect.Effect<void, StartupError, MinosConfig> = Effect.gen(function*() {
  const config = yield* MinosConfig
  const storage = config.saga.storage
  if (storage.backend === "lmdb" && !existsSync(storage.path)) return
  const store: Layer.Layer<SagaStore, StartupError> = storage.backend === "lmdb"
    ? mapError(LmdbSagaStore.layer({ path: storage.path }), (e) =>
      new StartupError({ dependency: "LMDB", message: `Cannot open the previous saga store at ${storage.path}: ${e.message}`, cause: e }))
    : mapError(PgSagaStore.layer.pipe(Layer.provide(Postgres.layer(storage.postgres))), (e) =>
      new StartupError({ dependency: "PostgreSQL", message: `Cannot read the previous saga store in ${storage.postgres.database}: ${e.message}. ${pgHint}`, cause: e }))
  const unfinished = yield* Effect.scoped(Effect.gen(function*() {
    const ctx = yield* Layer.build(store)
    const legacy = Context.get(ctx, SagaStore)
    const lists = yield* Effect.forEach(["created", "running", "paused"] as const, (status) => legacy.list({ status, limit: 100 }))
    return lists.flat()
  })).pipe(Effect.mapError((e) => e._tag === "StartupError" ? e : new StartupError({ dependency: "Sagas", message: `Cannot read the previous saga store: ${e.message}`, cause: e })))
  if (unfinished.length > 0) {
    const where = storage.backend === "lmdb" ? storage.path : `${storage.postgres.database} (minos_saga_executions)`
    return yield* Effect.fail(new StartupError({
      dependency: "Sagas",
      message: `${unfinished.length} saga execution(s) in the previous format are unfinished in ${where} (e.g. ${unfinished.slice(0, 3).map((r) => `${r.saga} ${r.id}`).join(", ")}). ` +
        "Executions now live in the service's own storage and the old ones cannot be continued: let them end with the previous version, " +
        "or move the old store away to abandon them."
    }))
  }
})

/**
 * The saga manager of the configured service, on the service's own storage (see `SagaManager`).
 * A definition that does not check, or unfinished executions of the previous store, fail the start.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerSagaManager = (
  definitions: ReadonlyArray<Saga.Definition.Any>
): Layer.Layer<SagaManager.SagaManager, StartupError, MinosConfig | Storage.Services | Replies.Replies> =>
  Layer.unwrap(Effect.gen(function*() {
    const config = yield* MinosConfig
    if (definitions.length > 0) yield* checkLegacySagas
    return mapError(SagaManager.layer(definitions, { service: config.service.name }), (e) =>
      new StartupError({ dependency: "Sagas", message: `Saga ${e.saga}, step ${e.step}: ${e.message}`, cause: e }))
  }))

/**
 * Registration with the registry `discovery` names, when `discovery.enabled` (nothing otherwise).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerDiscovery = (options: DiscoveryLayer.Options = {}): Layer.Layer<never, never, MinosConfig | Router.Routes | HttpServer.HttpAddress> =>
  Layer.unwrap(Effect.map(MinosConfig, (config) =>
    config.discovery.enabled
      ? DiscoveryLayer.layer({ service: config.service.name, client: config.discovery.client, host: config.discovery.host, port: config.discovery.port }, options)
      : Layer.empty))

const when = <E, R>(on: boolean, layer: Layer.Layer<never, E, R>): Layer.Layer<never, E, R> => (on ? layer : Layer.empty)

/**
 * The background parts the config switches on: consumer, relay, periodic jobs, HTTP server (with
 * discovery).
 */
const layerBackground = (config: Settings) => {
  const http = HttpServer.layer({
    host: config.rest.host,
    port: config.rest.port,
    bodyLimitBytes: config.rest.bodyLimitBytes,
    requestTimeoutMs: config.rest.requestTimeoutMs,
    serviceName: config.service.name
  }).pipe(
    mapError((e) => new StartupError({ dependency: "HTTP", message: `Cannot listen on ${config.rest.host}:${config.rest.port} (${e.message}); is the port in use? Set rest.port or MINOS_REST_PORT`, cause: e })),
    Layer.provide(Layer.fresh(layerHealth))
  )
  // registers with the registry once the server listens (it needs the bound HttpAddress)
  const httpAndDiscovery = Layer.fresh(layerDiscovery()).pipe(Layer.provideMerge(http))
  const consumer = Consumer.layer({ service: config.service.name, retry: config.queue.retry, backoffMs: config.queue.retryBackoffMs }).pipe(
    mapError((e) => new StartupError({ dependency: "Broker", message: `Cannot join the consumer group: ${e.message}`, cause: e }))
  )
  return Layer.mergeAll(
    when(config.components.consumer, consumer),
    when(config.components.relay, Layer.fresh(OutboxRelay.layer({ batchSize: config.queue.batchSize, pollIntervalMs: config.queue.pollIntervalMs }))),
    when(config.components.periodic, Layer.fresh(Scheduler.layer)),
    when(config.rest.enabled, httpAndDiscovery)
  )
}

/** What the service sends: its sagas' remote steps (their contracts) and `definition.sends`. */
const sendsOf = (definition: Pick<Definition<any, any, any>, "sagas" | "sends">): ReadonlyArray<Router.SentMessage> => {
  const byName = new Map<string, Router.SentMessage>()
  for (const saga of definition.sagas ?? []) {
    for (const step of saga.steps) if (step._tag === "Remote" && step.contract !== undefined) byName.set(step.contract.name, step.contract)
  }
  for (const s of definition.sends ?? []) byName.set(s.name, s)
  return [...byName.values()]
}

/**
 * The service on infrastructure provided by the caller (tests share one broker and one store
 * between several instances this way).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerWith = <const Hs extends ReadonlyArray<Handler>, S = never, E = never>(
  definition: Definition<Hs, S, E>
): Layer.Layer<S | SagaManager.SagaManager, E | StartupError | Router.RouteError, Infrastructure> =>
  Layer.unwrap(Effect.map(MinosConfig, (config) => {
    const projections = definition.projections ?? []
    // without `services`, S is inferred as never and the empty layer is exactly that
    const services = (definition.services ?? (Layer.empty as unknown as Layer.Layer<S, E, Infrastructure>)).pipe(
      // the repositories find the inline projections here
      Layer.provide(ProjectionRunner.layerInline(projections))
    )
    const sagas = layerSagaManager(definition.sagas ?? [])
    const routes = Router.layer([
      ...definition.handlers,
      ...ProjectionRunner.handlers(projections),
      ...(config.components.system ? SystemRoutes.handlers : []),
      ...(config.components.sagas ? [...Transactional.handlers(config.service.name), ...SagaRoutes.handlers] : [])
    ], {
      middleware: [...(config.components.sagas ? [Transactional.middleware(config.service.name)] : []), ...(definition.middleware ?? [])],
      publishes: definition.aggregates,
      sends: sendsOf(definition)
    })
    const followers = projections.length === 0
      ? Layer.empty
      : ProjectionRunner.layer(projections, { batchSize: config.queue.batchSize, pollIntervalMs: config.queue.pollIntervalMs })
    const base = Layer.merge(layerBackground(config), followers)
    const background = definition.background === undefined ? base : Layer.merge(base, definition.background)
    return background.pipe(Layer.provideMerge(routes), Layer.provideMerge(sagas), Layer.provideMerge(services))
  }))

/**
 * The whole service, infrastructure included. Launch it with `Layer.launch` (see `Cli.ts`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <const Hs extends ReadonlyArray<Handler>, S = never, E = never>(
  definition: Definition<Hs, S, E>
): Layer.Layer<S | SagaManager.SagaManager | Exclude<Infrastructure, MinosConfig>, E | StartupError | Router.RouteError, MinosConfig> =>
  layerWith(definition).pipe(Layer.provideMerge(layerInfrastructure))

/**
 * The storage unit of work, for code that writes read models next to handlers.
 *
 * @since 0.1.0
 */
export { UnitOfWork }

/**
 * Where the service's HTTP server listens (the bound port when `rest.port` is 0), from the context
 * `Layer.build` returned for it; none when REST is off.
 *
 * @since 0.1.0
 */
export const httpAddress = <R>(context: Context.Context<R>): Option.Option<HttpServer.HttpAddress["Service"]> =>
  Context.getOption(context as Context.Context<unknown> as Context.Context<HttpServer.HttpAddress>, HttpServer.HttpAddress)
