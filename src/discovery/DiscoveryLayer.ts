/**
 * Registers the microservice with its registry once the HTTP server listens, and unregisters it
 * when the service stops — minos's `DiscoveryConnector`.
 *
 * What it sends (`Discovery.Registration`):
 *
 * - `name`: the service name;
 * - `host`: `MINOS_DISCOVERY_ADDRESS` when set, else the machine's first non-internal IPv4 address
 *   (minos's `get_host_ip`), else the host the HTTP server is bound to;
 * - `port`: the port the HTTP server is bound to;
 * - `endpoints`: every REST route, `{url: "/exams/{uuid}", method: "GET"}`, sorted by URL then method.
 *
 * The client is `minos` (minos-discovery's REST API) or `kong` (Kong's admin API), at `host:port`.
 *
 * **Details**
 *
 * Registration runs in a background fiber: a registry that is down does not delay or stop the
 * service. Each attempt is bounded (a timeout and a few quick retries inside the client); after a
 * failed attempt the fiber waits `initialBackoff`, doubling up to `maxBackoff`, and tries again until
 * it succeeds. An outage is logged once (a warning), and its end once (info). A rejection (a 4xx) is
 * logged as an error and not retried: sending the same request again cannot succeed.
 *
 * On release, the fiber is stopped and, if the service was registered (or a registration was in
 * flight), it is unregistered, waiting at most `unregisterTimeout`; a failure there is logged, never
 * raised.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Fiber, Layer, Ref } from "effect"
import type * as HttpClient from "effect/http/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { networkInterfaces } from "node:os"
import { HttpAddress } from "../http/HttpServer.ts"
import { Routes, type RoutesShape } from "../router/Router.ts"
import { Discovery, DiscoveryError, endpointsOf, type Registration } from "./Discovery.ts"
import { cappedExponential } from "../internal/Schedules.ts"
import type * as Http from "./internal/http.ts"
import * as KongDiscoveryClient from "./KongDiscoveryClient.ts"
import * as MinosDiscoveryClient from "./MinosDiscoveryClient.ts"

/**
 * Which registry to register with.
 *
 * @category models
 * @since 0.1.0
 */
export interface RegistryOptions {
  /** The name the service registers under. */
  readonly service: string
  readonly client: "minos" | "kong"
  readonly host: string
  readonly port: number
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Where `MINOS_DISCOVERY_ADDRESS` is read; `process.env` when omitted. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Wait after the first failed registration (default 1 s); doubles after each failure. */
  readonly initialBackoff?: Duration.Input
  /** Longest wait between registration attempts (default 30 s). */
  readonly maxBackoff?: Duration.Input
  /** Longest the release waits for the unregistration (default 5 s). */
  readonly unregisterTimeout?: Duration.Input
  /** One call to the registry: timeout per attempt, attempts, backoff (defaults 5 s, 3, 200 ms). */
  readonly policy?: Partial<Http.Policy>
}

/**
 * The first non-internal IPv4 address of this machine, if any.
 *
 * @since 0.1.0
 */
export const hostIp = (): string | undefined => {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if ((a.family === "IPv4" || (a.family as unknown) === 4) && !a.internal) return a.address
    }
  }
  return undefined
}

/**
 * The address other services reach this one on: `MINOS_DISCOVERY_ADDRESS`, else {@link hostIp},
 * else `fallback` (the configured REST host).
 *
 * @since 0.1.0
 */
export const advertisedHost = (fallback: string, env: Readonly<Record<string, string | undefined>> = process.env): string => {
  const fromEnv = env["MINOS_DISCOVERY_ADDRESS"]?.trim()
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  return hostIp() ?? fallback
}

/**
 * What this service registers.
 *
 * @since 0.1.0
 */
export const registrationOf = (
  service: string,
  routes: Pick<RoutesShape, "rest">,
  address: { readonly host: string; readonly port: number },
  env: Readonly<Record<string, string | undefined>> = process.env
): Registration => ({
  name: service,
  host: advertisedHost(address.host, env),
  port: address.port,
  endpoints: endpointsOf(routes)
})

/**
 * The client of the registry, at `host:port`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerClient = (registry: Pick<RegistryOptions, "client" | "host" | "port">, policy?: Partial<Http.Policy>): Layer.Layer<Discovery, never, HttpClient.HttpClient> => {
  const options = { host: registry.host, port: registry.port, ...(policy === undefined ? {} : { policy }) }
  return registry.client === "kong" ? KongDiscoveryClient.layer(options) : MinosDiscoveryClient.layer(options)
}

type State = "pending" | "registering" | "registered" | "rejected"

const millis = (d: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(d))

/**
 * Registers `registration` in a background fiber of the current scope and unregisters it when the
 * scope closes (see the module header).
 *
 * @category constructors
 * @since 0.1.0
 */
export const run = Effect.fn("DiscoveryLayer.run")(function*(registration: Registration, options: Options = {}) {
  const discovery = yield* Discovery
  const state = yield* Ref.make<State>("pending")
  const initial = millis(options.initialBackoff ?? "1 second")
  const max = Math.max(initial, millis(options.maxBackoff ?? "30 seconds"))
  const what = `"${registration.name}" at ${registration.host}:${registration.port} (${registration.endpoints.length} endpoints)`

  const failures = yield* Ref.make(0)
  const attempt = Effect.gen(function*() {
    yield* Ref.set(state, "registering")
    yield* discovery.register(registration)
    yield* Ref.set(state, "registered")
    const failed = yield* Ref.get(failures)
    yield* Effect.logInfo(failed === 0 ? `registered ${what}` : `registry is back: registered ${what} after ${failed} failed attempts`)
  }).pipe(
    Effect.tapError((error) =>
      Effect.gen(function*() {
        if (!error.isRetryable) return
        yield* Ref.set(state, "pending")
        const failed = yield* Ref.updateAndGet(failures, (n) => n + 1)
        if (failed === 1) yield* Effect.logWarning(`registry unavailable, the service runs on and keeps trying to register ${what}: ${error.message}`)
        else yield* Effect.logDebug(`registration attempt ${failed + 1} failed: ${error.message}`)
      })
    )
  )
  const loop = attempt.pipe(
    Effect.retry({ schedule: cappedExponential(Duration.millis(initial), Duration.millis(max)), while: (error) => error.isRetryable }),
    Effect.catch((error) =>
      // a rejection (4xx): sending the same request again cannot succeed
      Effect.andThen(Ref.set(state, "rejected"), Effect.logError(`registration of ${what} was rejected, not retrying: ${error.message}`))
    )
  )

  const fiber = yield* Effect.forkScoped(loop)

  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* Fiber.interrupt(fiber)
      const last = yield* Ref.get(state)
      // Never registered: nothing to take back (and no reason to wait on a registry that is down).
      if (last !== "registered" && last !== "registering") return
      yield* discovery.unregister(registration.name).pipe(
        Effect.timeoutOrElse({
          duration: options.unregisterTimeout ?? "5 seconds",
          orElse: () => Effect.fail(new DiscoveryError({ reason: "Unavailable", message: "no answer in time" }))
        }),
        Effect.matchEffect({
          onSuccess: () => Effect.logInfo(`unregistered "${registration.name}"`),
          onFailure: (e) => Effect.logWarning(`could not unregister "${registration.name}": ${e.message}`)
        })
      )
    })
  )
})

/**
 * Registers the service with the registry once the HTTP server listens (it needs the server's
 * `HttpAddress`), and unregisters it when the layer is released.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (registry: RegistryOptions, options: Options = {}): Layer.Layer<never, never, Routes | HttpAddress> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const routes = yield* Routes
    const address = yield* HttpAddress
    yield* run(registrationOf(registry.service, routes, address, options.env ?? process.env), options)
  }).pipe(
    Effect.annotateLogs({ service: registry.service, discovery: `${registry.client} at ${registry.host}:${registry.port}` })
  )).pipe(
    Layer.provide(layerClient(registry, options.policy)),
    Layer.provide(NodeHttpClient.layerNodeHttp)
  )
