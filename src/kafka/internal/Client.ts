/**
 * What every @platformatic/kafka client of the backend shares: connection options (bootstrap
 * brokers, TLS, SASL, timeouts, retries) and the mapping of the client's errors onto `BrokerError`.
 */
import { findErrorBy, type BaseOptions } from "@platformatic/kafka"
import { Redacted } from "effect"
import { BrokerError } from "../../broker/Broker.ts"

/** TLS towards the brokers; PEM contents, not paths. */
export interface TlsOptions {
  readonly ca?: string | undefined
  readonly cert?: string | undefined
  readonly key?: Redacted.Redacted<string> | undefined
  /** Check the broker's certificate against `ca` (or the system CAs). Default true. */
  readonly rejectUnauthorized?: boolean | undefined
  /** The name the certificate must carry, when it is not the host of the address. */
  readonly serverName?: string | undefined
}

/** SASL authentication. */
export interface SaslOptions {
  readonly mechanism: "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
  readonly username: string
  readonly password: Redacted.Redacted<string>
}

export interface ClientOptions {
  readonly brokers: ReadonlyArray<string>
  readonly clientId: string
  readonly requestTimeoutMs?: number | undefined
  readonly tls?: TlsOptions | undefined
  readonly sasl?: SaslOptions | undefined
}

/** Backoff between the client's own retries: 100 ms doubling, at most 1 s. */
const retryDelay = (_client: unknown, _operation: string, attempt: number): number => Math.min(1_000, 100 * 2 ** Math.max(0, attempt - 1))

/** The options of one client (`retries`: how often it retries a retriable failure by itself). */
export const baseOptions = (options: ClientOptions, retries: number): BaseOptions => {
  const tls = options.tls
  return {
    clientId: options.clientId,
    bootstrapBrokers: [...options.brokers],
    connectTimeout: 3_000,
    timeout: options.requestTimeoutMs ?? 30_000,
    retries,
    retryDelay,
    metadataMaxAge: 5_000,
    autocreateTopics: false,
    ...(tls === undefined ? {} : {
      tls: {
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        ...(tls.cert === undefined ? {} : { cert: tls.cert }),
        ...(tls.key === undefined ? {} : { key: Redacted.value(tls.key) }),
        rejectUnauthorized: tls.rejectUnauthorized ?? true
      },
      ...(tls.serverName === undefined ? {} : { tlsServerName: tls.serverName })
    }),
    ...(options.sasl === undefined ? {} : {
      sasl: { mechanism: options.sasl.mechanism, username: options.sasl.username, password: Redacted.value(options.sasl.password) }
    })
  }
}

const apiIs = (cause: unknown, ids: ReadonlyArray<string>): boolean =>
  cause instanceof Error && ids.some((id) => findErrorBy(cause, "apiId", id) !== null)

const codeIs = (cause: unknown, code: string): boolean => cause instanceof Error && findErrorBy(cause, "code", code) !== null

/** The leaf messages of a (possibly nested) client error, for one readable line. */
const describe = (cause: unknown): string => {
  const leaves: Array<string> = []
  const walk = (e: unknown, depth: number) => {
    if (leaves.length >= 4 || depth > 6) return
    const nested = (e as { errors?: ReadonlyArray<unknown> } | null)?.errors
    if (Array.isArray(nested) && nested.length > 0) {
      for (const n of nested) walk(n, depth + 1)
      return
    }
    const message = e instanceof Error ? e.message : String(e)
    if (!leaves.includes(message)) leaves.push(message)
  }
  walk(cause, 0)
  const top = cause instanceof Error ? cause.message : ""
  return leaves.length === 0 || (leaves.length === 1 && leaves[0] === top) ? top || String(cause) : `${top} ${leaves.join("; ")}`.trim()
}

/**
 * Is the failure one the broker may get over by itself (a leader election, a coordinator loading, a
 * broker restarting)? The client marks every protocol error it may retry with `canRetry`.
 */
export const isRetriable = (cause: unknown): boolean =>
  cause instanceof Error && (
    codeIs(cause, "PLT_KFK_NETWORK") || codeIs(cause, "PLT_KFK_TIMEOUT") ||
    apiIs(cause, ["COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR", "LEADER_NOT_AVAILABLE", "NOT_LEADER_OR_FOLLOWER", "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "UNKNOWN_TOPIC_OR_PARTITION", "REBALANCE_IN_PROGRESS", "NOT_CONTROLLER", "REQUEST_TIMED_OUT", "KAFKA_STORAGE_ERROR", "FENCED_LEADER_EPOCH", "UNKNOWN_LEADER_EPOCH"]) ||
    findErrorBy(cause, "canRetry", true) !== null && findErrorBy(cause, "canRetry", false) === null
  )

/** Maps a client failure onto the port's error; `acknowledged` for a publish that failed part-way. */
export const toBrokerError = (what: string, acknowledged?: ReadonlyArray<number>) => (cause: unknown): BrokerError => {
  const message = `${what}: ${describe(cause)}`
  const extra = acknowledged === undefined || acknowledged.length === 0 ? {} : { acknowledged: [...acknowledged] }
  if (apiIs(cause, ["INVALID_TOPIC_EXCEPTION", "TOPIC_AUTHORIZATION_FAILED"])) return new BrokerError({ reason: "InvalidTopic", message, cause, ...extra })
  if (apiIs(cause, ["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD", "CORRUPT_MESSAGE", "SASL_AUTHENTICATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED", "UNSUPPORTED_SASL_MECHANISM", "ILLEGAL_SASL_STATE"]) || codeIs(cause, "PLT_KFK_AUTHENTICATION")) {
    return new BrokerError({ reason: "Rejected", message, cause, ...extra })
  }
  if (apiIs(cause, ["REQUEST_TIMED_OUT"]) || codeIs(cause, "PLT_KFK_TIMEOUT")) return new BrokerError({ reason: "Timeout", message, cause, ...extra })
  if (isRetriable(cause)) return new BrokerError({ reason: "Unavailable", message, cause, ...extra })
  return new BrokerError({ reason: "Unknown", message, cause, ...extra })
}

export const invalidTopic = (topic: string) =>
  new BrokerError({ reason: "InvalidTopic", message: `Invalid topic name ${JSON.stringify(topic)}: use 1-249 of [A-Za-z0-9._-]` })

/** A callback-style client call as a promise that always settles. */
export const call = <A>(f: (callback: (error: Error | null, value?: A) => void) => void): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    f((error, value) => (error ? reject(error) : resolve(value as A)))
  })
