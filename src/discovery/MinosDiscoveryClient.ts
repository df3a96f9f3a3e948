/**
 * The `Discovery` port over the minos-discovery REST API (the registry minos's API gateway reads),
 * the same requests as minos's `MinosDiscoveryClient`:
 *
 * | operation | request | body |
 * | --- | --- | --- |
 * | register | `POST http://{host}:{port}/microservices/{name}` | `{"address": host, "port": port, "endpoints": [[method, url], …]}` |
 * | unregister | `DELETE http://{host}:{port}/microservices/{name}` | none |
 *
 * The registry takes the name from the path (its handler sets `name` from the URL and builds the
 * entry from the body, answering 201 to the POST and 200 to the DELETE). Endpoints keep the order they
 * are given in (`Discovery.endpointsOf` sorts them by URL, then method).
 *
 * Each call is bounded (`Policy`: a timeout per attempt, a few attempts with exponential backoff on
 * outages, none on a 4xx). Longer outages are the caller's business: `DiscoveryLayer` keeps
 * retrying in the background.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import { Discovery, type Registration } from "./Discovery.ts"
import * as Http from "./internal/http.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Host of the minos-discovery service (`discovery.host`). */
  readonly host: string
  /** Its port (`discovery.port`, 5567 by default). */
  readonly port: number
  /** Timeout, attempts and backoff of one call; defaults: 5 s, 3 attempts, 200 ms doubling. */
  readonly policy?: Partial<Http.Policy>
}

/**
 * The JSON body of the registration request.
 *
 * @since 0.1.0
 */
export const subscription = (registration: Registration) => ({
  address: registration.host,
  port: registration.port,
  endpoints: registration.endpoints.map((e) => [e.method, e.url] as const)
})

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("MinosDiscoveryClient.make")(function*(options: Options) {
  const client = yield* HttpClient.HttpClient
  const policy: Http.Policy = { ...Http.defaultPolicy, ...options.policy }
  const base = `http://${options.host}:${options.port}`
  const url = (name: string) => `${base}/microservices/${encodeURIComponent(name)}`
  return Discovery.of({
    register: Effect.fn("MinosDiscoveryClient.register")(function*(registration: Registration) {
      const request = HttpClientRequest.post(url(registration.name)).pipe(HttpClientRequest.bodyJsonUnsafe(subscription(registration)))
      yield* Http.send(client, request, policy)
    }),
    unregister: Effect.fn("MinosDiscoveryClient.unregister")(function*(name: string) {
      // 404: not registered (any more), which is what we want.
      yield* Http.send(client, HttpClientRequest.delete(url(name)), policy, [404])
    })
  })
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<Discovery, never, HttpClient.HttpClient> => Layer.effect(Discovery, make(options))
