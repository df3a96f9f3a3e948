/**
 * The outbox relay: a background fiber that publishes committed outbox rows to the broker in order
 * and removes them only after the broker acknowledged them. It sleeps until a commit wakes it (or the
 * poll interval passes); while the broker is down it backs off and tries again, losing nothing.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Ref } from "effect"
import { Broker } from "../broker/Broker.ts"
import { cappedExponential } from "../internal/Schedules.ts"
import { Outbox } from "../queue/Outbox.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface RelayOptions {
  /** Rows per publish (default 1000). */
  readonly batchSize: number
  /** Longest idle wait before looking again without a wake-up (default 1 s). */
  readonly pollIntervalMs: number
}

/**
 * Publishes until the outbox is empty; returns how many rows went out.
 *
 * @category constructors
 * @since 0.1.0
 */
export const drain = (batchSize: number) =>
  Effect.gen(function*() {
    const outbox = yield* Outbox
    const broker = yield* Broker
    let total = 0
    for (;;) {
      const n = yield* outbox.process(batchSize, (rows) => broker.publish(rows))
      total += n
      if (n < batchSize) return total
    }
  })

/**
 * The relay loop; runs until interrupted.
 *
 * @category constructors
 * @since 0.1.0
 */
export const run = (options: RelayOptions) =>
  Effect.gen(function*() {
    const outbox = yield* Outbox
    const failures = yield* Ref.make(0)
    const once = Effect.gen(function*() {
      const n = yield* drain(options.batchSize)
      yield* Ref.set(failures, 0)
      if (n === 0) yield* outbox.awaitWork(options.pollIntervalMs)
    }).pipe(
      // defects too: the relay must outlive any one batch
      Effect.sandbox,
      Effect.tapError((cause) =>
        Effect.gen(function*() {
          const count = yield* Ref.updateAndGet(failures, (x) => x + 1)
          if (count === 1 || count % 20 === 0) yield* Effect.logWarning("outbox relay: publish failed, retrying", cause)
        })
      )
    )
    // a failure backs off (200 ms doubling to 5 s); the next success starts the schedule afresh
    return yield* Effect.forever(Effect.retry(once, cappedExponential("200 millis", "5 seconds")))
  })

/**
 * The relay, as a scoped background part. On shutdown it stops between
 * batches; what was not published stays in the outbox for the next start.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: RelayOptions): Layer.Layer<never, never, Outbox | Broker> => Layer.effectDiscard(
  Effect.gen(function*() {
    // on shutdown, after the loop stopped: one last bounded flush while the broker is still open
    yield* Effect.addFinalizer(() =>
      drain(options.batchSize).pipe(
        Effect.timeoutOption("5 seconds"),
        Effect.catchCause((cause) => Effect.logWarning("outbox relay: final flush failed; rows stay for the next start", cause))
      )
    )
    yield* run(options).pipe(Effect.forkScoped)
  })
)

