/**
 * The `Discovery` port: tells a service registry (minos-discovery or a Kong gateway) where this
 * microservice listens and which REST endpoints it serves, and takes it off again on shutdown —
 * minos's `DiscoveryConnector` (`subscribe` on setup, `unsubscribe` on destroy).
 *
 * Backends: `MinosDiscoveryClient` (the minos-discovery REST API) and `KongDiscoveryClient` (the Kong
 * admin API). `DiscoveryLayer` runs the registration in the background of a service, so an outage of
 * the registry never stops the service.
 *
 * Endpoint URLs use minos's (aiohttp's) syntax, `/exams/{uuid}`; {@link endpointsOf} derives them from
 * the `Routes` service, sorted by URL then method like minos does.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import * as PortError from "../errors/PortError.ts"
import type { RoutesShape } from "../router/Router.ts"

/**
 * @category errors
 * @since 0.1.0
 */
export const DiscoveryErrorReason = Schema.Literals(["Unavailable", "Rejected", "Unknown"])

/**
 * The one error of the `Discovery` port.
 *
 * - `Unavailable`: the registry did not answer (connection refused, timeout) or answered 408, 429
 *   or 5xx. Retryable.
 * - `Rejected`: the registry answered another 4xx; sending the same request again will not help.
 * - `Unknown`: anything else (an unexpected status or body, an invalid URL).
 *
 * @category errors
 * @since 0.1.0
 */
export class DiscoveryError extends Schema.TaggedError<DiscoveryError>()("DiscoveryError", {
  reason: DiscoveryErrorReason,
  message: Schema.String,
  /** The HTTP status, when the registry answered. */
  status: Schema.optional(Schema.Int),
  cause: Schema.optional(Schema.Defect())
}) {
  get [PortError.TypeId](): PortError.TypeId {
    return PortError.TypeId
  }
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

/**
 * One REST endpoint: `url` in minos's syntax (`/exams/{uuid}`), `method` upper-cased (`GET`).
 *
 * @category models
 * @since 0.1.0
 */
export interface Endpoint {
  readonly url: string
  readonly method: string
}

/**
 * What a microservice registers: its name, the address and port other services reach it on, and its
 * REST endpoints.
 *
 * @category models
 * @since 0.1.0
 */
export interface Registration {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly endpoints: ReadonlyArray<Endpoint>
}

/**
 * @category services
 * @since 0.1.0
 */
export interface DiscoveryShape {
  /** Registers (or re-registers, replacing the previous entry) the microservice. */
  readonly register: (registration: Registration) => Effect.Effect<void, DiscoveryError>
  /** Removes the microservice; succeeds when it was not registered. */
  readonly unregister: (name: string) => Effect.Effect<void, DiscoveryError>
}

/**
 * @category services
 * @since 0.1.0
 */
export class Discovery extends Context.Service<Discovery, DiscoveryShape>()("effect-minos/discovery/Discovery") {}

/**
 * `/exams/:uuid` → `/exams/{uuid}` (the router's syntax to minos's). `{uuid}` stays as it is.
 *
 * @since 0.1.0
 */
export const toMinosUrl = (path: string): string => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Sorts endpoints by URL, then method (minos's order), dropping duplicates.
 *
 * @since 0.1.0
 */
export const sortEndpoints = (endpoints: ReadonlyArray<Endpoint>): ReadonlyArray<Endpoint> => {
  const seen = new Set<string>()
  const out: Array<Endpoint> = []
  for (const e of endpoints) {
    const key = `${e.method} ${e.url}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push(e)
  }
  return out.sort((a, b) => compare(a.url, b.url) || compare(a.method, b.method))
}

/**
 * Every REST route of the service, as sorted minos endpoints.
 *
 * @since 0.1.0
 */
export const endpointsOf = (routes: Pick<RoutesShape, "rest">): ReadonlyArray<Endpoint> =>
  sortEndpoints(routes.rest.map((h) => ({ url: toMinosUrl(h.path), method: h.method.toUpperCase() })))
