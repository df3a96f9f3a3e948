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
import { Duration, Effect, Layer, Schema } from "effect"
import type { SqlError } from "effect/sql"
import { connect } from "node:net"
import { Broker } from "../broker/Broker.ts"
import * as KafkaBroker from "../kafka/KafkaBroker.ts"
import * as MemoryBroker from "../memory/MemoryBroker.ts"
import * as Replies from "../messaging/Replies.ts"
import * as RequestClient from "../messaging/RequestClient.ts"
import { MinosConfig } from "../config/MinosConfig.ts"
import * as DiscoveryLayer from "../discovery/DiscoveryLayer.ts"
import * as Health from "../http/Health.ts"
import * as HttpServer from "../http/HttpServer.ts"
import { EventStore } from "../eventstore/EventStore.ts"
import * as Consumer from "../messaging/Consumer.ts"
import * as OutboxRelay from "../messaging/OutboxRelay.ts"
import type { Handler, Middleware } from "../router/Router.ts"
import * as Router from "../router/Router.ts"
import * as Scheduler from "../router/Scheduler.ts"
import * as SagaRoutes from "./SagaRoutes.ts"
import * as SystemRoutes from "./SystemRoutes.ts"
import * as LmdbSagaStore from "../lmdb/LmdbSagaStore.ts"
import * as PgSagaStore from "../postgres/PgSagaStore.ts"
import type * as Saga from "../saga/Saga.ts"
import * as SagaManager from "../saga/SagaManager.ts"
import * as Transactional from "../saga/Transactional.ts"
import * as Lmdb from "../lmdb/Lmdb.ts"
import * as Postgres from "../postgres/Postgres.ts"
import type * as Storage from "../storage/Storage.ts"
import { type StorageError, UnitOfWork } from "../storage/UnitOfWork.ts"
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
  /** Saga definitions this service coordinates (see `SagaManager`). */
  readonly sagas?: ReadonlyArray<Saga.Definition.Any>
  /** Extra background parts that need the infrastructure and the user's services. */
  readonly background?: Layer.Layer<never, unknown, Infrastructure | S | Router.Routes | SagaManager.SagaManager>
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

/** Waits until host:port accepts connections, logging what it waits for. */
const waitFor = (dependency: string, host: string, port: number, hint: string) =>
  Effect.gen(function*() {
    const config = yield* MinosConfig
    for (let attempt = 0; ; attempt++) {
      if (yield* answers(host, port)) return
      if (attempt >= config.startup.retries) {
        return yield* Effect.fail(new StartupError({ dependency, message: `${dependency} at ${host}:${port} does not answer after ${attempt + 1} attempts. ${hint}` }))
      }
      if (attempt === 0 || attempt % 10 === 0) {
        yield* Effect.logWarning(`waiting for ${dependency} at ${host}:${port} (attempt ${attempt + 1}/${config.startup.retries + 1}). ${hint}`)
      }
      yield* Effect.sleep(Duration.millis(config.startup.retryDelayMs))
    }
  })

const pgHint = "Start it (`docker compose up -d` or `npm run services:up`) or check storage.postgres in the config."
const kafkaHint = "Start it (`docker compose up -d` or `npm run services:up`) or check broker.host/port in the config."

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
      return mapError(Lmdb.layer({ path, mapSize: config.storage.mapSize }) as Layer.Layer<Storage.Services, StorageError>, (e) =>
        new StartupError({ dependency: "LMDB", message: `Cannot open the LMDB store at ${path}: ${e.message}`, cause: e }))
    }
    const pg = config.storage.postgres
    yield* waitFor("PostgreSQL", pg.host, pg.port, pgHint)
    return mapError(Postgres.layerStorage(pg) as Layer.Layer<Storage.Services, SqlError.SqlError>, (e) =>
      new StartupError({ dependency: "PostgreSQL", message: `PostgreSQL ${pg.user}@${pg.host}:${pg.port}/${pg.database} refused the connection or the migration (${e.reason._tag}: ${e.message}). ${pgHint}`, cause: e }))
  })
)

/**
 * The broker the config selects.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerBroker: Layer.Layer<Broker, StartupError, MinosConfig> = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* MinosConfig
    if (config.broker.backend === "memory") return mapError(MemoryBroker.layerFromConfig, (e) => new StartupError({ dependency: "Broker", message: `Cannot open the in-process broker's log: ${e.message}`, cause: e }))
    const [host, port] = config.broker.brokers[0]!.split(":")
    yield* waitFor("Kafka", host!, Number(port ?? 9092), kafkaHint)
    const brokers = config.broker.brokers
    return mapError(KafkaBroker.layer({ brokers, clientId: config.broker.clientId }), (e) =>
      new StartupError({ dependency: "Kafka", message: `Kafka at ${brokers.join(",")}: ${e.message}. ${kafkaHint}`, cause: e }))
  })
)

/**
 * Storage, broker, replies and the request/reply client.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerInfrastructure: Layer.Layer<Exclude<Infrastructure, MinosConfig>, StartupError, MinosConfig> = mapError(
  RequestClient.layer,
  (e) => new StartupError({ dependency: "Kafka", message: `Cannot read the reply topic: ${e.message}`, cause: e })
).pipe(Layer.provideMerge(Layer.mergeAll(layerStorage, layerBroker, Replies.layer)))

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
 * The saga store the config selects (`saga.storage`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerSagaStore = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* MinosConfig
    const storage = config.saga.storage
    if (storage.backend === "lmdb") {
      return mapError(LmdbSagaStore.layer({ path: storage.path }), (e) =>
        new StartupError({ dependency: "LMDB", message: `Cannot open the saga store at ${storage.path}: ${e.message}`, cause: e }))
    }
    const pg = storage.postgres
    return mapError(PgSagaStore.layer.pipe(Layer.provide(Postgres.layer(pg))), (e) =>
      new StartupError({ dependency: "PostgreSQL", message: `Cannot open the saga store in ${pg.database}: ${String((e as { message?: string }).message ?? e)}. ${pgHint}`, cause: e }))
  })
)

const mapErrorToStartup = (dependency: string, message: (e: unknown) => string) => <A, E, R>(layer: Layer.Layer<A, E, R>) =>
  mapError(layer, (e) => new StartupError({ dependency, message: message(e), cause: e }))

const when = <A, E, R>(on: boolean, layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> => (on ? layer : (Layer.empty as unknown as Layer.Layer<A, E, R>))

/**
 * The service on infrastructure provided by the caller (tests share one broker and one store
 * between several instances this way).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerWith = <const Hs extends ReadonlyArray<Handler>, S = never, E = never>(
  definition: Definition<Hs, S, E>
): Layer.Layer<S | SagaManager.SagaManager, unknown, Infrastructure> => {
  const services = (definition.services ?? Layer.empty) as Layer.Layer<S, E, Infrastructure>
  const sagas = Layer.unwrap(Effect.map(MinosConfig, (config) =>
    Layer.effect(SagaManager.SagaManager, SagaManager.make(definition.sagas ?? [], { service: config.service.name })).pipe(
      // fresh: two services built together (tests, one process) must not share one store
      Layer.provide(Layer.fresh(layerSagaStore))
    )
  )) as Layer.Layer<SagaManager.SagaManager, unknown, S | Infrastructure>
  const routes = Layer.unwrap(Effect.map(MinosConfig, (config) =>
    Router.layer([
      ...definition.handlers,
      ...(config.components.system ? SystemRoutes.handlers : []),
      ...(config.components.sagas ? [...Transactional.handlers(config.service.name), ...SagaRoutes.handlers] : [])
    ], {
      middleware: [...(config.components.sagas ? [Transactional.middleware(config.service.name)] : []), ...(definition.middleware ?? [])]
    })
  )) as Layer.Layer<Router.Routes, Router.RouteError, S | Infrastructure | SagaManager.SagaManager>
  const background = Layer.unwrap(
    Effect.gen(function*() {
      const config = yield* MinosConfig
      const http = HttpServer.layer({
        host: config.rest.host,
        port: config.rest.port,
        bodyLimitBytes: config.rest.bodyLimitBytes,
        requestTimeoutMs: config.rest.requestTimeoutMs,
        serviceName: config.service.name
      }).pipe(
        mapErrorToStartup("HTTP", (e) => `Cannot listen on ${config.rest.host}:${config.rest.port} (${String((e as { message?: string }).message ?? e)}); is the port in use? Set rest.port or MINOS_REST_PORT`),
        Layer.provide(Layer.fresh(layerHealth))
      )
      // Registers with the registry once the server listens (it needs the bound HttpAddress).
      const httpAndDiscovery = config.discovery.enabled ? Layer.fresh(DiscoveryLayer.layer).pipe(Layer.provideMerge(http)) : http
      const parts: Array<Layer.Layer<never, unknown, any>> = [
        when(config.components.consumer, Consumer.layer()),
        when(config.components.relay, Layer.fresh(OutboxRelay.layer)),
        when(config.components.periodic, Layer.fresh(Scheduler.layer)),
        when(config.rest.enabled, httpAndDiscovery as Layer.Layer<any, unknown, any>)
      ]
      if (definition.background !== undefined) parts.push(definition.background)
      return Layer.mergeAll(...(parts as [Layer.Layer<never, unknown, any>]))
    })
  ) as Layer.Layer<never, unknown, Infrastructure | S | Router.Routes | SagaManager.SagaManager>
  return background.pipe(Layer.provideMerge(routes), Layer.provideMerge(sagas), Layer.provideMerge(services)) as Layer.Layer<S | SagaManager.SagaManager, unknown, Infrastructure>
}

/**
 * The whole service, infrastructure included. Launch it with `Layer.launch` (see `Cli.ts`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <const Hs extends ReadonlyArray<Handler>, S = never, E = never>(
  definition: Definition<Hs, S, E>
): Layer.Layer<S | SagaManager.SagaManager | Exclude<Infrastructure, MinosConfig>, unknown, MinosConfig> => layerWith(definition).pipe(Layer.provideMerge(layerInfrastructure))

/**
 * The storage unit of work, for code that writes read models next to handlers.
 *
 * @since 0.1.0
 */
export { UnitOfWork }
