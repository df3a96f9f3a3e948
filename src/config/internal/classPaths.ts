/**
 * The minos class paths a v1/v2 config may name, and what each one selects here. Documented in
 * docs/config.md; keep the two in step. A `minos.*` path missing from this table is an error, so a
 * typo never silently falls back to a default backend.
 */

export type ClassRole =
  | { readonly _tag: "Storage"; readonly backend: "postgres" | "lmdb"; readonly part: "pool" | "events" | "snapshots" | "queue" | "transactions" }
  | { readonly _tag: "Broker"; readonly backend: "kafka" | "memory"; readonly part: "publisher" | "subscriber" | "client" }
  | { readonly _tag: "SagaManager" }
  | { readonly _tag: "Discovery"; readonly client?: "minos" | "kong" }
  | { readonly _tag: "Component"; readonly component: Component }
  | { readonly _tag: "Http" }
  | { readonly _tag: "Middleware"; readonly middleware: "transactional" }
  | { readonly _tag: "Router"; readonly router: "broker" | "periodic" | "rest" | "graphql" }

export type Component = "consumer" | "handlers" | "replies" | "events" | "rest" | "snapshots" | "relay" | "periodic" | "system" | "sagas"

const storage = (backend: "postgres" | "lmdb", part: "pool" | "events" | "snapshots" | "queue" | "transactions"): ClassRole => ({ _tag: "Storage", backend, part })
const broker = (backend: "kafka" | "memory", part: "publisher" | "subscriber" | "client"): ClassRole => ({ _tag: "Broker", backend, part })
const component = (c: Component): ClassRole => ({ _tag: "Component", component: c })

export const classPaths: ReadonlyMap<string, ClassRole> = new Map<string, ClassRole>([
  // storage: minos <= 0.5 names (the seed), then 0.7/0.8 names
  ["minos.common.PostgreSqlPool", storage("postgres", "pool")],
  ["minos.common.PostgreSqlRepository", storage("postgres", "events")],
  ["minos.common.PostgreSqlSnapshot", storage("postgres", "snapshots")],
  ["minos.common.InMemoryRepository", storage("lmdb", "events")],
  ["minos.common.InMemorySnapshot", storage("lmdb", "snapshots")],
  ["minos.common.DatabaseClientPool", storage("postgres", "pool")],
  ["minos.common.DatabaseLockPool", storage("postgres", "pool")],
  ["minos.aggregate.PostgreSqlEventRepository", storage("postgres", "events")],
  ["minos.aggregate.PostgreSqlSnapshotRepository", storage("postgres", "snapshots")],
  ["minos.aggregate.PostgreSqlTransactionRepository", storage("postgres", "transactions")],
  ["minos.aggregate.DatabaseEventRepository", storage("postgres", "events")],
  ["minos.aggregate.DatabaseDeltaRepository", storage("postgres", "events")],
  ["minos.aggregate.DatabaseSnapshotRepository", storage("postgres", "snapshots")],
  ["minos.aggregate.DatabaseTransactionRepository", storage("postgres", "transactions")],
  ["minos.transactions.DatabaseTransactionRepository", storage("postgres", "transactions")],
  ["minos.aggregate.InMemoryEventRepository", storage("lmdb", "events")],
  ["minos.aggregate.InMemoryDeltaRepository", storage("lmdb", "events")],
  ["minos.aggregate.InMemorySnapshotRepository", storage("lmdb", "snapshots")],
  ["minos.aggregate.InMemoryTransactionRepository", storage("lmdb", "transactions")],
  ["minos.transactions.InMemoryTransactionRepository", storage("lmdb", "transactions")],
  ["minos.plugins.aiopg.AiopgDatabaseClient", storage("postgres", "pool")],
  ["minos.plugins.lmdb.LmdbDatabaseClient", storage("lmdb", "pool")],
  ["minos.networks.PostgreSqlBrokerPublisherQueue", storage("postgres", "queue")],
  ["minos.networks.PostgreSqlBrokerSubscriberQueue", storage("postgres", "queue")],
  ["minos.networks.DatabaseBrokerPublisherQueue", storage("postgres", "queue")],
  ["minos.networks.DatabaseBrokerSubscriberQueue", storage("postgres", "queue")],
  ["minos.networks.DatabaseBrokerSubscriberDuplicateValidator", storage("postgres", "queue")],
  ["minos.networks.InMemoryBrokerPublisherQueue", storage("lmdb", "queue")],
  ["minos.networks.InMemoryBrokerSubscriberQueue", storage("lmdb", "queue")],
  ["minos.networks.InMemoryBrokerSubscriberDuplicateValidator", storage("lmdb", "queue")],
  ["minos.networks.DatabaseBrokerPublisherTransactionRepository", storage("postgres", "queue")],
  ["minos.networks.InMemoryBrokerPublisherTransactionRepository", storage("lmdb", "queue")],
  // broker
  ["minos.networks.CommandBroker", broker("kafka", "publisher")],
  ["minos.networks.CommandReplyBroker", broker("kafka", "publisher")],
  ["minos.networks.EventBroker", broker("kafka", "publisher")],
  ["minos.networks.Consumer", broker("kafka", "subscriber")],
  ["minos.networks.DynamicHandlerPool", broker("kafka", "client")],
  ["minos.networks.BrokerClientPool", broker("kafka", "client")],
  ["minos.networks.BrokerPublisher", broker("kafka", "publisher")],
  ["minos.plugins.kafka.KafkaBrokerPublisher", broker("kafka", "publisher")],
  ["minos.plugins.kafka.KafkaBrokerSubscriber", broker("kafka", "subscriber")],
  ["minos.networks.InMemoryBrokerPublisher", broker("memory", "publisher")],
  ["minos.networks.InMemoryBrokerSubscriber", broker("memory", "subscriber")],
  ["minos.networks.TransactionalBrokerPublisher", broker("kafka", "publisher")],
  // v2 routers: which handler kinds are served (all of them are, whatever the list says)
  ["minos.networks.BrokerRouter", { _tag: "Router", router: "broker" }],
  ["minos.networks.PeriodicRouter", { _tag: "Router", router: "periodic" }],
  ["minos.networks.RestHttpRouter", { _tag: "Router", router: "rest" }],
  ["minos.plugins.graphql.GraphQlHttpRouter", { _tag: "Router", router: "graphql" }],
  // saga, discovery, http
  ["minos.saga.SagaManager", { _tag: "SagaManager" }],
  ["minos.networks.DiscoveryConnector", { _tag: "Discovery" }],
  ["minos.networks.MinosDiscoveryClient", { _tag: "Discovery", client: "minos" }],
  ["minos.plugins.minos_discovery.MinosDiscoveryClient", { _tag: "Discovery", client: "minos" }],
  ["minos.plugins.kong.KongDiscoveryClient", { _tag: "Discovery", client: "kong" }],
  ["minos.networks.HttpConnector", { _tag: "Http" }],
  ["minos.plugins.aiohttp.AioHttpConnector", { _tag: "Http" }],
  ["minos.saga.transactional_command", { _tag: "Middleware", middleware: "transactional" }],
  // background services (v1 `service.services`, v2 `services`/ports)
  ["minos.networks.ConsumerService", component("consumer")],
  ["minos.networks.CommandHandlerService", component("handlers")],
  ["minos.networks.QueryHandlerService", component("handlers")],
  ["minos.networks.CommandReplyHandlerService", component("replies")],
  ["minos.networks.EventHandlerService", component("events")],
  ["minos.networks.RestService", component("rest")],
  ["minos.networks.HttpPort", component("rest")],
  ["minos.networks.BrokerPort", component("consumer")],
  ["minos.networks.ProducerService", component("relay")],
  ["minos.networks.PeriodicPort", component("periodic")],
  ["minos.networks.PeriodicTaskSchedulerService", component("periodic")],
  ["minos.networks.SystemService", component("system")],
  ["minos.common.SnapshotService", component("snapshots")],
  ["minos.networks.SnapshotService", component("snapshots")],
  ["minos.aggregate.SnapshotService", component("snapshots")],
  ["minos.aggregate.TransactionService", component("sagas")],
  ["minos.saga.SagaService", component("sagas")]
])

/** Class paths outside `minos.` are the application's own modules (e.g. `src.queries.ExamQueryService`). */
export const isFrameworkPath = (path: string): boolean => path.startsWith("minos.")

/** `src.aggregates.Exam` → `Exam`. */
export const simpleName = (path: string): string => path.slice(path.lastIndexOf(".") + 1)
