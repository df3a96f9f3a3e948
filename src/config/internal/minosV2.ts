/**
 * minos v2 (`version: 2`, minos 0.6+: its README QuickStart and its CLI templates), loaded unchanged.
 * Every class path is looked up in the one table (`classPaths.ts`) and checked against the key it
 * sits under; the backends follow from the database clients and the broker classes.
 */
import { Redacted, Schema } from "effect"
import { type ClassRole, classPaths, type Component, isFrameworkPath, simpleName } from "./classPaths.ts"
import type { Leaf } from "./schemaLeaves.ts"
import { defaults, type PostgresSettings, type Problem, type Resolved, type SagaStorageSettings, type StorageSettings } from "./formats.ts"

const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))
const NonEmpty = Schema.String.check(Schema.isMinLength(1))
const Positive = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegative = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Password = Schema.NullOr(Schema.Union([Schema.String, Schema.Number]))
const ServiceName = Schema.String.check(Schema.isPattern(/^[A-Za-z][A-Za-z0-9_-]*$/, { expected: "a service name (letters, digits, '-' or '_', starting with a letter)" }))
const ClassPath = NonEmpty
const ClassList = Schema.Array(ClassPath)

const Database = Schema.Struct({
  client: Schema.optional(ClassPath),
  // aiopg
  database: Schema.optional(NonEmpty),
  host: Schema.optional(NonEmpty),
  port: Schema.optional(Port),
  user: Schema.optional(NonEmpty),
  password: Schema.optional(Password),
  connection_timeout: Schema.optional(Schema.Number),
  cursor_timeout: Schema.optional(Schema.Number),
  // lmdb
  path: Schema.optional(NonEmpty),
  max_tables: Schema.optional(Positive),
  map_size: Schema.optional(Positive)
})

/** The keys of a `databases.<name>` block (environment overrides are derived per named database). */
const databaseKeys = Object.keys(Database.fields) as ReadonlyArray<keyof typeof Database.fields>

export const MinosV2 = Schema.Struct({
  version: Schema.Union([Schema.Literal(2), Schema.Literal("2")]),
  name: ServiceName,
  injections: Schema.optional(Schema.Union([ClassList, Schema.Record(Schema.String, ClassPath)])),
  serializer: Schema.optional(Schema.Union([ClassPath, Schema.Struct({ client: Schema.optional(ClassPath) })])),
  databases: Schema.optional(Schema.Record(Schema.String, Database)),
  interfaces: Schema.optional(Schema.Struct({
    http: Schema.optional(Schema.Struct({
      port: Schema.optional(ClassPath),
      // 0 picks a free port
      connector: Schema.optional(Schema.Struct({ client: Schema.optional(ClassPath), host: Schema.optional(NonEmpty), port: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))) }))
    })),
    broker: Schema.optional(Schema.Struct({
      port: Schema.optional(ClassPath),
      common: Schema.optional(Schema.Struct({
        host: Schema.optional(NonEmpty),
        port: Schema.optional(Port),
        user: Schema.optional(NonEmpty),
        password: Schema.optional(Password),
        queue: Schema.optional(Schema.Struct({ records: Schema.optional(Positive), retry: Schema.optional(NonNegative) }))
      })),
      publisher: Schema.optional(Schema.Struct({ client: Schema.optional(ClassPath), queue: Schema.optional(ClassPath) })),
      subscriber: Schema.optional(Schema.Struct({ client: Schema.optional(ClassPath), queue: Schema.optional(ClassPath), validator: Schema.optional(ClassPath) }))
    })),
    periodic: Schema.optional(Schema.Struct({ port: Schema.optional(ClassPath) }))
  })),
  pools: Schema.optional(Schema.Record(Schema.String, ClassPath)),
  routers: Schema.optional(ClassList),
  middleware: Schema.optional(ClassList),
  services: Schema.optional(ClassList),
  aggregate: Schema.optional(Schema.Struct({
    entities: Schema.optional(ClassList),
    repositories: Schema.optional(Schema.Record(Schema.String, ClassPath)),
    client: Schema.optional(ClassPath),
    publisher: Schema.optional(Schema.Union([ClassPath, Schema.Record(Schema.String, ClassPath)]))
  })),
  saga: Schema.optional(Schema.Struct({ manager: Schema.optional(ClassPath) })),
  discovery: Schema.optional(Schema.Struct({
    connector: Schema.optional(ClassPath),
    client: Schema.optional(ClassPath),
    host: Schema.optional(NonEmpty),
    port: Schema.optional(Port)
  }))
})

type Doc = typeof MinosV2.Type
type DatabaseDoc = typeof Database.Type

/**
 * Environment overrides for the named databases a file declares (`MINOS_DATABASES_DEFAULT_HOST`):
 * a record has no fixed keys, so its leaves come from the document. minos reads `default`, `broker`,
 * `saga`, `transaction`, `aggregate`, `delta`, `snapshot` and `query`; those names are offered even
 * when the file does not declare them.
 */
export const databaseLeaves = (doc: Record<string, unknown>): ReadonlyArray<Leaf> => {
  const declared = doc["databases"] !== null && typeof doc["databases"] === "object" ? Object.keys(doc["databases"] as object) : []
  const names = new Set([...declared, "default", "broker", "saga", "transaction", "aggregate", "delta", "snapshot", "query"])
  const kinds: Record<string, Leaf["kind"]> = { port: "number", connection_timeout: "number", cursor_timeout: "number", max_tables: "number", map_size: "number" }
  return [...names].flatMap((name) => databaseKeys.map((key): Leaf => ({ path: ["databases", name, key], kind: kinds[key] ?? "string" })))
}

type Role<T extends ClassRole["_tag"]> = Extract<ClassRole, { _tag: T }>

/** What each key accepts: a key that names a framework class of the wrong kind is refused. */
const expected: ReadonlyArray<{ readonly key: RegExp; readonly tags: ReadonlyArray<ClassRole["_tag"]>; readonly what: string }> = [
  { key: /^databases\.[^.]+\.client$/, tags: ["Storage"], what: "a database client" },
  { key: /^interfaces\.http\.port$/, tags: ["Component"], what: "an HTTP port" },
  { key: /^interfaces\.http\.connector\.client$/, tags: ["Http"], what: "an HTTP connector" },
  { key: /^interfaces\.broker\.port$/, tags: ["Component"], what: "a broker port" },
  { key: /^interfaces\.broker\.(publisher|subscriber)\.client$/, tags: ["Broker"], what: "a broker client" },
  { key: /^interfaces\.broker\.(publisher|subscriber)\.(queue|validator)$/, tags: ["Storage"], what: "a broker queue" },
  { key: /^interfaces\.periodic\.port$/, tags: ["Component"], what: "a periodic port" },
  { key: /^pools\./, tags: ["Storage", "Broker"], what: "a pool" },
  { key: /^routers\./, tags: ["Router"], what: "a router" },
  { key: /^middleware\./, tags: ["Middleware"], what: "a middleware function" },
  { key: /^services\./, tags: ["Component"], what: "a service" },
  { key: /^aggregate\.repositories\./, tags: ["Storage"], what: "a repository" },
  { key: /^aggregate\.publisher/, tags: ["Broker", "Storage"], what: "a publisher" },
  { key: /^saga\.manager$/, tags: ["SagaManager"], what: "a saga manager" },
  { key: /^discovery\.(connector|client)$/, tags: ["Discovery"], what: "a discovery connector or client" }
]

interface Seen {
  readonly path: ReadonlyArray<string>
  readonly role: ClassRole
}

const lmdbDefaultPath = (name: string) => `./data/${name}`

const postgresOf = (db: DatabaseDoc, path: ReadonlyArray<string>): PostgresSettings | Problem => {
  if (db.database === undefined) {
    return { path: [...path, "database"], reason: "InvalidValue", message: "A PostgreSQL database (minos.plugins.aiopg.AiopgDatabaseClient) needs `database`" }
  }
  return {
    host: db.host ?? defaults.postgres.host,
    port: db.port ?? defaults.postgres.port,
    database: db.database,
    user: db.user ?? defaults.postgres.user,
    password: Redacted.make(db.password === null || db.password === undefined ? defaults.postgres.password : String(db.password)),
    maxConnections: defaults.postgres.maxConnections,
    connectTimeoutMs: db.connection_timeout === undefined ? defaults.postgres.connectTimeoutMs : Math.round(db.connection_timeout * 1000),
    schema: "public"
  }
}

const isProblem = (x: unknown): x is Problem => typeof x === "object" && x !== null && "reason" in x && "message" in x && "path" in x

export const resolveMinosV2 = (file: string, doc: Doc): Resolved | Problem => {
  const seen: Array<Seen> = []
  const application: Record<string, string> = {}
  const visit = (path: ReadonlyArray<string>, value: string): Problem | undefined => {
    if (!isFrameworkPath(value)) {
      application[path.join(".")] = value
      return undefined
    }
    const role = classPaths.get(value)
    const key = path.join(".")
    if (role === undefined) {
      return { path, reason: "UnknownClassPath", message: `Unknown minos class path ${JSON.stringify(value)}; see docs/config.md for the supported ones` }
    }
    const rule = expected.find((e) => e.key.test(key))
    if (rule !== undefined && !rule.tags.includes(role._tag)) {
      return { path, reason: "InvalidValue", message: `${value} is not ${rule.what}` }
    }
    seen.push({ path, role })
    return undefined
  }
  const list = (prefix: string, values: ReadonlyArray<string> | Readonly<Record<string, string>> | undefined) =>
    Object.entries(values ?? {}).map(([k, v]) => [[prefix, k], v] as const)

  const classes: Array<readonly [ReadonlyArray<string>, string | undefined]> = [
    ...list("injections", doc.injections),
    ...Object.entries(doc.databases ?? {}).map(([name, db]) => [["databases", name, "client"], db.client] as const),
    [["interfaces", "http", "port"], doc.interfaces?.http?.port],
    [["interfaces", "http", "connector", "client"], doc.interfaces?.http?.connector?.client],
    [["interfaces", "broker", "port"], doc.interfaces?.broker?.port],
    [["interfaces", "broker", "publisher", "client"], doc.interfaces?.broker?.publisher?.client],
    [["interfaces", "broker", "publisher", "queue"], doc.interfaces?.broker?.publisher?.queue],
    [["interfaces", "broker", "subscriber", "client"], doc.interfaces?.broker?.subscriber?.client],
    [["interfaces", "broker", "subscriber", "queue"], doc.interfaces?.broker?.subscriber?.queue],
    [["interfaces", "broker", "subscriber", "validator"], doc.interfaces?.broker?.subscriber?.validator],
    [["interfaces", "periodic", "port"], doc.interfaces?.periodic?.port],
    ...list("pools", doc.pools),
    ...list("routers", doc.routers),
    ...list("middleware", doc.middleware),
    ...list("services", doc.services),
    ...Object.entries(doc.aggregate?.repositories ?? {}).map(([k, v]) => [["aggregate", "repositories", k], v] as const),
    ...(typeof doc.aggregate?.publisher === "string"
      ? [[["aggregate", "publisher"], doc.aggregate.publisher] as const]
      : Object.entries(doc.aggregate?.publisher ?? {}).map(([k, v]) => [["aggregate", "publisher", k], v] as const)),
    [["aggregate", "client"], doc.aggregate?.client],
    [["saga", "manager"], doc.saga?.manager],
    [["discovery", "connector"], doc.discovery?.connector],
    [["discovery", "client"], doc.discovery?.client]
  ]
  for (const [path, value] of classes) {
    if (value === undefined) continue
    const p = visit(path, value)
    if (p) return p
  }
  // the serializer is informational: minos reads none either
  const serializer = typeof doc.serializer === "string" ? doc.serializer : doc.serializer?.client
  if (serializer !== undefined) application["serializer"] = serializer
  for (const [i, entity] of (doc.aggregate?.entities ?? []).entries()) application[`aggregate.entities.${i}`] = entity

  // storage: the database each part uses (minos falls back to `default`), one backend and one
  // database for events, snapshots and the broker queues, since one transaction writes them all
  const databases = doc.databases ?? {}
  const databaseFor = (name: string): readonly [string, DatabaseDoc] | undefined =>
    databases[name] !== undefined ? [name, databases[name]] : databases["default"] !== undefined ? ["default", databases["default"]] : undefined
  const clientRole = (name: string): Role<"Storage"> | undefined => {
    const found = seen.find((s) => s.path.join(".") === `databases.${name}.client`)
    return found?.role._tag === "Storage" ? found.role : undefined
  }
  const parts = ["delta", "aggregate", "snapshot", "broker", "transaction"].map((name) => databaseFor(name)).filter((d) => d !== undefined)
  const unique = [...new Map(parts.map((p) => [p[0], p])).values()]
  let storage: StorageSettings
  const primary = unique[0]
  const primaryBackend = primary === undefined ? "lmdb" : clientRole(primary[0])?.backend ?? (primary[1].database !== undefined ? "postgres" : "lmdb")
  for (const [name, db] of unique.slice(1)) {
    const backend = clientRole(name)?.backend ?? (db.database !== undefined ? "postgres" : "lmdb")
    const same = backend === primaryBackend && (backend === "lmdb"
      ? (db.path ?? lmdbDefaultPath(doc.name)) === (primary![1].path ?? lmdbDefaultPath(doc.name))
      : (db.host ?? defaults.postgres.host) === (primary![1].host ?? defaults.postgres.host) &&
        (db.port ?? defaults.postgres.port) === (primary![1].port ?? defaults.postgres.port) && db.database === primary![1].database)
    if (!same) {
      return { path: ["databases", name], reason: "Inconsistent", message: `effect-minos writes events, snapshots and the broker queues in one transaction, so \`databases.${name}\` must be the same database as \`databases.${primary![0]}\`` }
    }
  }
  const inMemoryRepos = seen.filter((s) => s.path[0] === "aggregate" && s.path[1] === "repositories" && s.role._tag === "Storage" && s.role.backend === "lmdb")
  if (primaryBackend === "postgres" && inMemoryRepos.length > 0) {
    return { path: inMemoryRepos[0]!.path, reason: "Inconsistent", message: "An in-memory repository next to a PostgreSQL database: events, snapshots and the queues are written in one transaction, so they need one backend" }
  }
  if (primaryBackend === "postgres") {
    const pg = postgresOf(primary![1], ["databases", primary![0]])
    if (isProblem(pg)) return pg
    storage = { backend: "postgres", postgres: pg }
  } else {
    storage = { backend: "lmdb", path: primary?.[1].path ?? lmdbDefaultPath(doc.name), mapSize: primary?.[1].map_size ?? defaults.lmdb.mapSize }
  }

  const sagaDb = databaseFor("saga")
  let sagaStorage: SagaStorageSettings
  if (sagaDb !== undefined && (clientRole(sagaDb[0])?.backend ?? (sagaDb[1].database !== undefined ? "postgres" : "lmdb")) === "postgres") {
    if (storage.backend !== "postgres") {
      return { path: ["databases", sagaDb[0]], reason: "Inconsistent", message: "Saga executions on PostgreSQL use the service's PostgreSQL storage; this file keeps its events in LMDB" }
    }
    sagaStorage = { backend: "postgres", postgres: storage.postgres }
  } else {
    sagaStorage = { backend: "lmdb", path: sagaDb?.[0] === "saga" && sagaDb[1].path !== undefined ? sagaDb[1].path : `./data/${doc.name}-sagas.lmdb` }
  }

  const broker = doc.interfaces?.broker
  const brokerRoles = seen.flatMap((s) => (s.role._tag === "Broker" && s.path[0] === "interfaces" ? [s.role] : []))
  const kafka = brokerRoles.some((r) => r.backend === "kafka")
  const common = broker?.common

  const components: Record<Component, boolean> = {
    consumer: false, handlers: false, replies: false, events: false, rest: false, snapshots: false, relay: false, periodic: false,
    system: true, sagas: false
  }
  const has = (path: string) => seen.some((s) => s.path.join(".") === path)
  if (has("interfaces.broker.port")) Object.assign(components, { consumer: true, handlers: true, replies: true, events: true })
  if (broker?.publisher !== undefined || has("interfaces.broker.port")) components.relay = true
  if (has("interfaces.http.port") || doc.interfaces?.http?.connector !== undefined) components.rest = true
  if (has("interfaces.periodic.port")) components.periodic = true
  for (const s of seen) if (s.path[0] === "services" && s.role._tag === "Component") components[s.role.component] = true
  if (has("saga.manager")) components.sagas = true
  if ((doc.aggregate?.entities?.length ?? 0) > 0) components.snapshots = true

  const discoveryRole = seen.find((s) => s.path.join(".") === "discovery.client")?.role as Role<"Discovery"> | undefined
  const entity = doc.aggregate?.entities?.[0]
  return {
    source: { file, format: "minos-v2" },
    service: { name: doc.name, aggregate: entity === undefined ? undefined : simpleName(entity), entry: undefined },
    rest: {
      enabled: components.rest,
      host: doc.interfaces?.http?.connector?.host ?? defaults.rest.host,
      port: doc.interfaces?.http?.connector?.port ?? defaults.rest.port,
      bodyLimitBytes: defaults.rest.bodyLimitBytes,
      requestTimeoutMs: defaults.rest.requestTimeoutMs
    },
    storage,
    broker: kafka
      ? { backend: "kafka", brokers: [`${common?.host ?? defaults.kafka.host}:${common?.port ?? defaults.kafka.port}`], clientId: doc.name }
      : { backend: "memory" },
    queue: {
      batchSize: common?.queue?.records ?? defaults.queue.batchSize,
      retry: common?.queue?.retry ?? defaults.queue.retry,
      retryBackoffMs: defaults.queue.retryBackoffMs,
      pollIntervalMs: defaults.queue.pollIntervalMs
    },
    saga: { storage: sagaStorage },
    discovery: {
      enabled: discoveryRole !== undefined,
      client: discoveryRole?.client ?? defaults.discovery.client,
      host: doc.discovery?.host ?? defaults.discovery.host,
      port: doc.discovery?.port ?? defaults.discovery.port
    },
    startup: defaults.startup,
    components,
    application
  }
}
