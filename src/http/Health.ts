/**
 * Liveness of a service's dependencies, served as `GET /system/health` by `HttpServer`: a list of
 * named checks (storage, broker, …) that run concurrently, each under a timeout.
 *
 * ```ts
 * Health.layer([
 *   { name: "storage", check: eventStore.head },
 *   { name: "broker", check: broker.ping }
 * ])
 * ```
 *
 * Without a `Health` service the server reports `ok` with no checks.
 *
 * @since 0.1.0
 */
import { Cause, Context, Duration, Effect, Layer, Option } from "effect"

/**
 * One dependency to probe. A failure, a defect or a timeout marks it unavailable.
 *
 * @category models
 * @since 0.1.0
 */
export interface Check {
  readonly name: string
  readonly check: Effect.Effect<void, unknown>
}

/**
 * @category services
 * @since 0.1.0
 */
export interface HealthShape {
  readonly checks: ReadonlyArray<Check>
  /** Upper bound of one check. */
  readonly timeout: Duration.Duration
}

/**
 * @category services
 * @since 0.1.0
 */
export class Health extends Context.Service<Health, HealthShape>()("effect-minos/http/Health") {}

/**
 * The outcome of running every check: `"ok"` per passing check, the failure's message otherwise.
 *
 * @category models
 * @since 0.1.0
 */
export interface Report {
  readonly status: "ok" | "unavailable"
  readonly checks: Readonly<Record<string, string>>
}

/** @since 0.1.0 */
export const defaultTimeout: Duration.Duration = Duration.seconds(3)

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = (checks: ReadonlyArray<Check>, options: { readonly timeout?: Duration.Input | undefined } = {}): HealthShape => ({
  checks,
  timeout: options.timeout === undefined ? defaultTimeout : Duration.fromInputUnsafe(options.timeout)
})

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.findErrorOption(cause)
  const error = Option.isSome(failure) ? failure.value : Cause.squash(cause)
  if (typeof error === "object" && error !== null) {
    const message = (error as { message?: unknown }).message
    if (typeof message === "string" && message !== "") return message
    const tag = (error as { _tag?: unknown })._tag
    if (typeof tag === "string") return tag
  }
  return String(error)
}

const runOne = (check: Check, timeout: Duration.Duration): Effect.Effect<string> =>
  check.check.pipe(
    Effect.timeoutOption(timeout),
    Effect.map(Option.match({ onNone: () => `Timed out after ${Duration.format(timeout)}`, onSome: () => "ok" })),
    Effect.catchCause((cause) => Effect.succeed(describe(cause)))
  )

/**
 * Runs the checks concurrently; never fails.
 *
 * @since 0.1.0
 */
export const run = Effect.fn("Health.run")(function*(health: HealthShape) {
  const results = yield* Effect.forEach(health.checks, (c) => runOne(c, health.timeout), { concurrency: "unbounded" })
  const checks: Record<string, string> = {}
  health.checks.forEach((c, i) => {
    checks[c.name] = results[i] ?? "ok"
  })
  const status: Report["status"] = results.every((r) => r === "ok") ? "ok" : "unavailable"
  return { status, checks } satisfies Report as Report
})

/**
 * The `Health` service, or no checks when none is provided.
 *
 * @since 0.1.0
 */
export const current: Effect.Effect<HealthShape> = Effect.map(Effect.serviceOption(Health), Option.getOrElse(() => make([])))

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (checks: ReadonlyArray<Check>, options: { readonly timeout?: Duration.Input | undefined } = {}): Layer.Layer<Health> =>
  Layer.succeed(Health, Health.of(make(checks, options)))

/**
 * @category layers
 * @since 0.1.0
 */
export const layerEmpty: Layer.Layer<Health> = layer([])
