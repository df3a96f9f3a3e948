/**
 * The config formats: minos v1 (the seed's `config.yml`, loaded unchanged) and effect-minos/1
 * (ours); minos v2 is in `minosV2.ts`. Each is a Schema for the file plus a function that resolves it to the one shape the
 * runtime reads.
 */
import { Redacted, Schema } from "effect"
import { type ClassRole, classPaths, type Component, isFrameworkPath, simpleName } from "./classPaths.ts"

// ---------------------------------------------------------------------------------------------
// resolved shape (re-exported by MinosConfig.ts)

/**
 * TLS towards a server: files with PEM contents (read at start-up by the runtime).
 */
export interface TlsSettings {
  /** CA certificates to trust instead of the system ones. */
  readonly caFile?: string | undefined
  /** Client certificate and key, for servers that ask for one (mutual TLS). */
  readonly certFile?: string | undefined
  readonly keyFile?: string | undefined
  /** Refuse a server certificate that does not check out (default true). */
  readonly rejectUnauthorized: boolean
  /** The name the server certificate must carry, when it is not the host connected to. */
  readonly serverName?: string | undefined
}

export interface SaslSettings {
  readonly mechanism: "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
  readonly username: string
  readonly password: Redacted.Redacted<string>
}

export interface PostgresSettings {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: Redacted.Redacted<string>
  readonly maxConnections: number
  readonly connectTimeoutMs: number
  /** The PostgreSQL schema the tables live in (default `public`). */
  readonly schema: string
  /** TLS to the server; absent: plain TCP. */
  readonly tls?: TlsSettings | undefined
}

export type StorageSettings =
  | { readonly backend: "lmdb"; readonly path: string; readonly mapSize: number }
  | { readonly backend: "postgres"; readonly postgres: PostgresSettings }

export type BrokerSettings =
  | { readonly backend: "memory" }
  | {
    readonly backend: "kafka"
    /** Bootstrap brokers; start-up needs any one of them. */
    readonly brokers: ReadonlyArray<string>
    readonly clientId: string
    /** Partitions of the topics the service creates (absent: the broker's `num.partitions`). */
    readonly partitions?: number | undefined
    /** Replication factor of the topics the service creates (absent: the broker's default). */
    readonly replicationFactor?: number | undefined
    readonly tls?: TlsSettings | undefined
    readonly sasl?: SaslSettings | undefined
  }

export type SagaStorageSettings =
  | { readonly backend: "lmdb"; readonly path: string }
  | { readonly backend: "postgres"; readonly postgres: PostgresSettings }

export interface Resolved {
  readonly source: { readonly file: string; readonly format: "minos-v1" | "minos-v2" | "effect-minos/1" }
  readonly service: {
    readonly name: string
    readonly aggregate: string | undefined
    /** The module `effect-minos start` runs (its default export is the service layer). */
    readonly entry: string | undefined
  }
  readonly rest: {
    readonly enabled: boolean
    readonly host: string
    readonly port: number
    readonly bodyLimitBytes: number
    readonly requestTimeoutMs: number
  }
  readonly storage: StorageSettings
  readonly broker: BrokerSettings
  readonly queue: {
    readonly batchSize: number
    readonly retry: number
    readonly retryBackoffMs: number
    readonly pollIntervalMs: number
  }
  readonly saga: { readonly storage: SagaStorageSettings }
  readonly discovery: {
    readonly enabled: boolean
    readonly client: "minos" | "kong"
    readonly host: string
    readonly port: number
  }
  readonly startup: { readonly retries: number; readonly retryDelayMs: number }
  readonly components: Readonly<Record<Component, boolean>>
  /** Application class paths a minos file names (informational: code registers handlers). */
  readonly application: Readonly<Record<string, string>>
}

export interface Problem {
  readonly path: ReadonlyArray<string>
  readonly reason: "InvalidValue" | "UnknownClassPath" | "Inconsistent"
  readonly message: string
}

const allComponents = (on: boolean): Record<Component, boolean> => ({
  consumer: on, handlers: on, replies: on, events: on, rest: on, snapshots: on, relay: on, periodic: on,
  system: on, sagas: on
})

export const defaults = {
  rest: { host: "0.0.0.0", port: 8080, bodyLimitBytes: 1_048_576, requestTimeoutMs: 30_000 },
  postgres: { host: "localhost", port: 5432, user: "postgres", password: "", maxConnections: 10, connectTimeoutMs: 5_000 },
  lmdb: { mapSize: 2 * 1024 ** 3 },
  kafka: { host: "localhost", port: 9092 },
  queue: { batchSize: 1000, retry: 2, retryBackoffMs: 200, pollIntervalMs: 1_000 },
  discovery: { client: "minos" as const, host: "localhost", port: 5567 },
  startup: { retries: 30, retryDelayMs: 1_000 }
}

// ---------------------------------------------------------------------------------------------
// shared pieces

const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))
/** The HTTP port; 0 picks a free one (logged, and in `HttpAddress`). */
const RestPort = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))
const NonEmpty = Schema.String.check(Schema.isMinLength(1))
const Positive = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegative = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
// YAML turns an empty password into null
const Password = Schema.NullOr(Schema.Union([Schema.String, Schema.Number]))
const ServiceName = Schema.String.check(Schema.isPattern(/^[A-Za-z][A-Za-z0-9_-]*$/, { expected: "a service name (letters, digits, '-' or '_', starting with a letter)" }))

const TlsFields = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean),
  ca_file: Schema.optional(NonEmpty),
  cert_file: Schema.optional(NonEmpty),
  key_file: Schema.optional(NonEmpty),
  reject_unauthorized: Schema.optional(Schema.Boolean),
  server_name: Schema.optional(NonEmpty)
})

const SaslFields = Schema.Struct({
  mechanism: Schema.Literals(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]),
  username: NonEmpty,
  password: Password
})

/** `tls:` present (and not `enabled: false`) turns TLS on. */
const tlsOf = (t: typeof TlsFields.Type | undefined): TlsSettings | undefined =>
  t === undefined || t.enabled === false
    ? undefined
    : {
      rejectUnauthorized: t.reject_unauthorized ?? true,
      ...(t.ca_file === undefined ? {} : { caFile: t.ca_file }),
      ...(t.cert_file === undefined ? {} : { certFile: t.cert_file }),
      ...(t.key_file === undefined ? {} : { keyFile: t.key_file }),
      ...(t.server_name === undefined ? {} : { serverName: t.server_name })
    }

const PostgresFields = {
  host: Schema.optional(NonEmpty),
  port: Schema.optional(Port),
  database: NonEmpty,
  user: Schema.optional(NonEmpty),
  password: Schema.optional(Password)
}

const postgresOf = (p: {
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database: string
  readonly user?: string | undefined
  readonly password?: string | number | null | undefined
  readonly max_connections?: number | undefined
  readonly connect_timeout_ms?: number | undefined
  readonly schema?: string | undefined
  readonly tls?: typeof TlsFields.Type | undefined
}): PostgresSettings => ({
  host: p.host ?? defaults.postgres.host,
  port: p.port ?? defaults.postgres.port,
  database: p.database,
  user: p.user ?? defaults.postgres.user,
  password: Redacted.make(p.password === null || p.password === undefined ? defaults.postgres.password : String(p.password)),
  maxConnections: p.max_connections ?? defaults.postgres.maxConnections,
  connectTimeoutMs: p.connect_timeout_ms ?? defaults.postgres.connectTimeoutMs,
  schema: p.schema ?? "public",
  ...(tlsOf(p.tls) === undefined ? {} : { tls: tlsOf(p.tls) })
})

const brokerAddress = (host: string | undefined, port: number | undefined): string =>
  `${host ?? defaults.kafka.host}:${port ?? defaults.kafka.port}`

// ---------------------------------------------------------------------------------------------
// minos v1 (reference §3.3)

const V1Postgres = Schema.Struct(PostgresFields)

export const MinosV1 = Schema.Struct({
  version: Schema.optional(Schema.Union([Schema.Literal(1), Schema.Literal("1")])),
  service: Schema.Struct({
    name: ServiceName,
    aggregate: Schema.optional(NonEmpty),
    injections: Schema.optional(Schema.Union([Schema.Record(Schema.String, NonEmpty), Schema.Array(NonEmpty)])),
    services: Schema.optional(Schema.Array(NonEmpty))
  }),
  rest: Schema.optional(Schema.Struct({ host: Schema.optional(NonEmpty), port: Schema.optional(RestPort) })),
  broker: Schema.optional(Schema.Struct({
    host: Schema.optional(NonEmpty),
    port: Schema.optional(Port),
    queue: Schema.optional(Schema.Struct({
      ...PostgresFields,
      records: Schema.optional(Positive),
      retry: Schema.optional(NonNegative)
    }))
  })),
  repository: Schema.optional(V1Postgres),
  snapshot: Schema.optional(V1Postgres),
  query_repository: Schema.optional(V1Postgres),
  events: Schema.optional(Schema.Struct({ service: Schema.optional(NonEmpty) })),
  queries: Schema.optional(Schema.Struct({ service: Schema.optional(NonEmpty) })),
  commands: Schema.optional(Schema.Struct({ service: Schema.optional(NonEmpty) })),
  saga: Schema.optional(Schema.Struct({
    storage: Schema.optional(Schema.Struct({ path: Schema.optional(NonEmpty) }))
  })),
  middleware: Schema.optional(Schema.Array(NonEmpty)),
  discovery: Schema.optional(Schema.Struct({
    client: Schema.optional(NonEmpty),
    host: Schema.optional(NonEmpty),
    port: Schema.optional(Port)
  }))
})

/** minos v1's fixed environment names (reference §3.3) that are not plain key paths. */
export const minosV1Aliases: Readonly<Record<string, ReadonlyArray<string>>> = {
  MINOS_DISCOVERY_CLIENT: ["discovery", "client"]
}

const sameDatabase = (a: typeof V1Postgres.Type, b: typeof V1Postgres.Type): boolean =>
  (a.host ?? defaults.postgres.host) === (b.host ?? defaults.postgres.host) &&
  (a.port ?? defaults.postgres.port) === (b.port ?? defaults.postgres.port) &&
  a.database === b.database

export const resolveMinosV1 = (file: string, doc: typeof MinosV1.Type): Resolved | Problem => {
  const roles: Array<{ path: ReadonlyArray<string>; role: ClassRole }> = []
  const application: Record<string, string> = {}
  const visit = (path: ReadonlyArray<string>, value: string): Problem | undefined => {
    if (!isFrameworkPath(value)) {
      application[path.join(".")] = value
      return undefined
    }
    const role = classPaths.get(value)
    if (role === undefined) {
      return { path, reason: "UnknownClassPath", message: `Unknown minos class path ${JSON.stringify(value)}; see docs/config.md for the supported ones` }
    }
    roles.push({ path, role })
    return undefined
  }
  const injections = doc.service.injections ?? {}
  const entries: ReadonlyArray<[string, string]> = Array.isArray(injections)
    ? injections.map((v, i) => [String(i), v])
    : Object.entries(injections as Record<string, string>)
  for (const [key, value] of entries) {
    const p = visit(["service", "injections", key], value)
    if (p) return p
  }
  for (const [i, value] of (doc.service.services ?? []).entries()) {
    const p = visit(["service", "services", String(i)], value)
    if (p) return p
  }
  for (const [i, value] of (doc.middleware ?? []).entries()) {
    const p = visit(["middleware", String(i)], value)
    if (p) return p
  }
  for (const key of ["commands", "queries", "events"] as const) {
    const svc = doc[key]?.service
    if (svc !== undefined) {
      const p = visit([key, "service"], svc)
      if (p) return p
    }
  }
  if (doc.discovery?.client !== undefined) {
    const p = visit(["discovery", "client"], doc.discovery.client)
    if (p) return p
  }

  // storage: events, snapshots and the queue share one transaction, hence one database
  const storageRoles = roles.filter((r): r is { path: ReadonlyArray<string>; role: Extract<ClassRole, { _tag: "Storage" }> } => r.role._tag === "Storage")
  const backends = new Set(storageRoles.map((r) => r.role.backend))
  if (backends.size > 1) {
    const lmdb = storageRoles.find((r) => r.role.backend === "lmdb")!
    return { path: lmdb.path, reason: "Inconsistent", message: "Events, snapshots and the message queue are written in one transaction, so they need one backend; this file mixes PostgreSQL and in-memory/LMDB classes" }
  }
  let storage: StorageSettings
  const wantsPostgres = backends.has("postgres") || (backends.size === 0 && doc.repository !== undefined)
  if (wantsPostgres) {
    const repository = doc.repository
    if (repository === undefined) {
      return { path: ["repository"], reason: "InvalidValue", message: "A PostgreSQL repository is configured by class path, but the `repository` block (database, user, password, host, port) is missing" }
    }
    for (const [key, other] of [["snapshot", doc.snapshot], ["broker.queue", doc.broker?.queue]] as const) {
      if (other !== undefined && !sameDatabase(repository, other)) {
        return { path: [...key.split("."), "database"], reason: "Inconsistent", message: `effect-minos writes events, snapshots and the outbox in one PostgreSQL transaction, so \`${key}\` must name the same host, port and database as \`repository\`` }
      }
    }
    storage = { backend: "postgres", postgres: postgresOf(repository) }
  } else {
    storage = { backend: "lmdb", path: `./data/${doc.service.name}`, mapSize: defaults.lmdb.mapSize }
  }

  const brokerRoles = roles.flatMap((r) => (r.role._tag === "Broker" ? [r.role] : []))
  const kafka = brokerRoles.some((r) => r.backend === "kafka") || (brokerRoles.length === 0 && doc.broker?.host !== undefined)
  const broker: BrokerSettings = kafka
    ? { backend: "kafka", brokers: [brokerAddress(doc.broker?.host, doc.broker?.port)], clientId: doc.service.name }
    : { backend: "memory" }

  const components = allComponents(false)
  const declared = roles.flatMap((r) => (r.role._tag === "Component" ? [r.role.component] : []))
  if (declared.length === 0) Object.assign(components, allComponents(true))
  for (const c of declared) components[c] = true
  // always on: they have no minos service name but every service needs them
  components.system = true
  components.periodic = true
  if (roles.some((r) => r.role._tag === "SagaManager")) components.sagas = true
  if (declared.includes("handlers")) components.events = components.events || declared.includes("consumer")

  const discoveryRole = roles.find((r) => r.role._tag === "Discovery" && r.path[0] === "discovery")?.role as Extract<ClassRole, { _tag: "Discovery" }> | undefined
  return {
    source: { file, format: "minos-v1" },
    service: { name: doc.service.name, aggregate: doc.service.aggregate === undefined ? undefined : simpleName(doc.service.aggregate), entry: undefined },
    rest: {
      enabled: components.rest,
      host: doc.rest?.host ?? defaults.rest.host,
      port: doc.rest?.port ?? defaults.rest.port,
      bodyLimitBytes: defaults.rest.bodyLimitBytes,
      requestTimeoutMs: defaults.rest.requestTimeoutMs
    },
    storage,
    broker,
    queue: {
      batchSize: doc.broker?.queue?.records ?? defaults.queue.batchSize,
      retry: doc.broker?.queue?.retry ?? defaults.queue.retry,
      retryBackoffMs: defaults.queue.retryBackoffMs,
      pollIntervalMs: defaults.queue.pollIntervalMs
    },
    saga: { storage: { backend: "lmdb", path: doc.saga?.storage?.path ?? `./${doc.service.name}.lmdb` } },
    discovery: {
      enabled: doc.discovery !== undefined && doc.discovery.client !== undefined,
      client: discoveryRole?.client ?? defaults.discovery.client,
      host: doc.discovery?.host ?? defaults.discovery.host,
      port: doc.discovery?.port ?? defaults.discovery.port
    },
    startup: defaults.startup,
    components,
    application
  }
}

// ---------------------------------------------------------------------------------------------
// effect-minos/1 (docs/config.md)

export const NATIVE_VERSION = "effect-minos/1"

const NativePostgres = Schema.Struct({
  ...PostgresFields,
  max_connections: Schema.optional(Positive),
  connect_timeout_ms: Schema.optional(Positive),
  schema: Schema.optional(Schema.String.check(Schema.isPattern(/^[a-z_][a-z0-9_]{0,62}$/, { expected: "a lower-case SQL identifier" }))),
  tls: Schema.optional(TlsFields)
})

export const Native = Schema.Struct({
  version: Schema.Literal(NATIVE_VERSION),
  service: Schema.Struct({ name: ServiceName, aggregate: Schema.optional(NonEmpty), entry: Schema.optional(NonEmpty) }),
  rest: Schema.optional(Schema.Struct({
    enabled: Schema.optional(Schema.Boolean),
    host: Schema.optional(NonEmpty),
    port: Schema.optional(RestPort),
    body_limit_bytes: Schema.optional(Positive),
    request_timeout_ms: Schema.optional(Positive)
  })),
  storage: Schema.optional(Schema.Struct({
    backend: Schema.optional(Schema.Literals(["lmdb", "postgres"])),
    lmdb: Schema.optional(Schema.Struct({ path: Schema.optional(NonEmpty), map_size: Schema.optional(Positive) })),
    postgres: Schema.optional(NativePostgres)
  })),
  broker: Schema.optional(Schema.Struct({
    backend: Schema.optional(Schema.Literals(["memory", "kafka"])),
    host: Schema.optional(NonEmpty),
    port: Schema.optional(Port),
    brokers: Schema.optional(Schema.Array(NonEmpty)),
    client_id: Schema.optional(NonEmpty),
    partitions: Schema.optional(Positive),
    replication_factor: Schema.optional(Positive),
    tls: Schema.optional(TlsFields),
    sasl: Schema.optional(SaslFields),
    queue: Schema.optional(Schema.Struct({
      batch_size: Schema.optional(Positive),
      retry: Schema.optional(NonNegative),
      retry_backoff_ms: Schema.optional(NonNegative),
      poll_interval_ms: Schema.optional(Positive)
    }))
  })),
  saga: Schema.optional(Schema.Struct({
    storage: Schema.optional(Schema.Struct({
      backend: Schema.optional(Schema.Literals(["lmdb", "postgres"])),
      path: Schema.optional(NonEmpty)
    }))
  })),
  discovery: Schema.optional(Schema.Struct({
    enabled: Schema.optional(Schema.Boolean),
    client: Schema.optional(Schema.Literals(["minos", "kong"])),
    host: Schema.optional(NonEmpty),
    port: Schema.optional(Port)
  })),
  startup: Schema.optional(Schema.Struct({
    retries: Schema.optional(NonNegative),
    retry_delay_ms: Schema.optional(Positive)
  })),
  components: Schema.optional(Schema.Struct(
    Object.fromEntries((Object.keys(allComponents(true)) as Array<Component>).map((c) => [c, Schema.optional(Schema.Boolean)])) as Record<Component, Schema.optional<Schema.Boolean>>
  ))
})

/** The v1 fixed names keep working on our format where the meaning carries over. */
export const nativeAliases: Readonly<Record<string, ReadonlyArray<string>>> = {
  MINOS_REPOSITORY_HOST: ["storage", "postgres", "host"],
  MINOS_REPOSITORY_PORT: ["storage", "postgres", "port"],
  MINOS_REPOSITORY_DATABASE: ["storage", "postgres", "database"],
  MINOS_REPOSITORY_USER: ["storage", "postgres", "user"],
  MINOS_REPOSITORY_PASSWORD: ["storage", "postgres", "password"],
  MINOS_BROKER_QUEUE_RECORDS: ["broker", "queue", "batch_size"]
}

export const resolveNative = (file: string, doc: typeof Native.Type): Resolved | Problem => {
  const pg = doc.storage?.postgres
  const storageBackend = doc.storage?.backend ?? "lmdb"
  const postgres = pg === undefined ? undefined : postgresOf(pg)
  let storage: StorageSettings
  if (storageBackend === "postgres") {
    if (postgres === undefined) {
      return { path: ["storage", "postgres"], reason: "InvalidValue", message: "storage.backend is postgres, so storage.postgres (at least `database`) is required" }
    }
    storage = { backend: "postgres", postgres }
  } else {
    storage = { backend: "lmdb", path: doc.storage?.lmdb?.path ?? `./data/${doc.service.name}`, mapSize: doc.storage?.lmdb?.map_size ?? defaults.lmdb.mapSize }
  }
  const b = doc.broker
  const brokerTls = tlsOf(b?.tls)
  const broker: BrokerSettings = (b?.backend ?? "memory") === "kafka"
    ? {
      backend: "kafka",
      brokers: b?.brokers ?? [brokerAddress(b?.host, b?.port)],
      clientId: b?.client_id ?? doc.service.name,
      ...(b?.partitions === undefined ? {} : { partitions: b.partitions }),
      ...(b?.replication_factor === undefined ? {} : { replicationFactor: b.replication_factor }),
      ...(brokerTls === undefined ? {} : { tls: brokerTls }),
      ...(b?.sasl === undefined ? {} : {
        sasl: {
          mechanism: b.sasl.mechanism,
          username: b.sasl.username,
          password: Redacted.make(b.sasl.password === null || b.sasl.password === undefined ? "" : String(b.sasl.password))
        }
      })
    }
    : { backend: "memory" }
  const sagaBackend = doc.saga?.storage?.backend ?? "lmdb"
  let sagaStorage: SagaStorageSettings
  if (sagaBackend === "postgres") {
    if (postgres === undefined) {
      return { path: ["saga", "storage", "backend"], reason: "InvalidValue", message: "saga.storage.backend is postgres, which uses storage.postgres; that block is missing" }
    }
    sagaStorage = { backend: "postgres", postgres }
  } else {
    sagaStorage = { backend: "lmdb", path: doc.saga?.storage?.path ?? `./data/${doc.service.name}-sagas.lmdb` }
  }
  const components = allComponents(true)
  for (const [k, v] of Object.entries(doc.components ?? {})) if (v !== undefined) components[k as Component] = v
  const restEnabled = doc.rest?.enabled ?? true
  components.rest = components.rest && restEnabled
  return {
    source: { file, format: "effect-minos/1" },
    service: { name: doc.service.name, aggregate: doc.service.aggregate, entry: doc.service.entry },
    rest: {
      enabled: components.rest,
      host: doc.rest?.host ?? defaults.rest.host,
      port: doc.rest?.port ?? defaults.rest.port,
      bodyLimitBytes: doc.rest?.body_limit_bytes ?? defaults.rest.bodyLimitBytes,
      requestTimeoutMs: doc.rest?.request_timeout_ms ?? defaults.rest.requestTimeoutMs
    },
    storage,
    broker,
    queue: {
      batchSize: b?.queue?.batch_size ?? defaults.queue.batchSize,
      retry: b?.queue?.retry ?? defaults.queue.retry,
      retryBackoffMs: b?.queue?.retry_backoff_ms ?? defaults.queue.retryBackoffMs,
      pollIntervalMs: b?.queue?.poll_interval_ms ?? defaults.queue.pollIntervalMs
    },
    saga: { storage: sagaStorage },
    discovery: {
      enabled: doc.discovery?.enabled ?? false,
      client: doc.discovery?.client ?? defaults.discovery.client,
      host: doc.discovery?.host ?? defaults.discovery.host,
      port: doc.discovery?.port ?? defaults.discovery.port
    },
    startup: {
      retries: doc.startup?.retries ?? defaults.startup.retries,
      retryDelayMs: doc.startup?.retry_delay_ms ?? defaults.startup.retryDelayMs
    },
    components,
    application: {}
  }
}
