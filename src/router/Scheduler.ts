/**
 * Periodic handlers (minos's `enroute.periodic.event`): each job sleeps until the next time its cron
 * expression matches (UTC), runs, and repeats; runs of one job never overlap, and with several
 * replicas a cron job runs on one of them (`Leadership`). `@reboot` jobs run once when each replica
 * starts. A failing run is logged and the schedule carries on. Time comes from
 * Effect's `Clock`, so tests drive it with `TestClock`.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Layer, Result, Schedule } from "effect"
import { Leadership } from "../cluster/Leadership.ts"
import { describeCause } from "../internal/Outcome.ts"
import * as Request from "./Request.ts"
import { parseSchedule, type PeriodicHandler, Routes, withMiddleware } from "./Router.ts"

const runOnce = (job: PeriodicHandler<any, Request.Request>, middleware: Parameters<typeof withMiddleware>[0], scheduledAt: number) =>
  Effect.gen(function*() {
    const request = yield* Request.make({
      kind: "periodic",
      route: job.name,
      identifier: crypto.randomUUID(),
      headers: { "scheduled-at": new Date(scheduledAt).toISOString() }
    })
    yield* withMiddleware(middleware, request, job.handle).pipe(
      Effect.catchCause((cause) => Effect.logWarning(`periodic job ${job.name} failed: ${describeCause(cause)}`)),
      Effect.withSpan("Scheduler.run", { attributes: { job: job.name } })
    )
  })

/**
 * Runs one job forever.
 *
 * @category constructors
 * @since 0.1.0
 */
export const schedule = (job: PeriodicHandler<any, Request.Request>, middleware: Parameters<typeof withMiddleware>[0] = []) =>
  Effect.gen(function*() {
    const parsed = parseSchedule(job.schedule)
    if (Result.isFailure(parsed)) return yield* Effect.die(new Error(`invalid schedule for ${job.name}: ${parsed.failure}`))
    const cron = parsed.success
    if (cron === "reboot") return yield* runOnce(job, middleware, yield* Clock.currentTimeMillis)
    // a parsed Cron cannot fail to parse again
    return yield* Effect.schedule(Effect.flatMap(Clock.currentTimeMillis, (now) => runOnce(job, middleware, now)), Schedule.cron(cron)).pipe(Effect.orDie)
  })

/**
 * Every periodic handler of `Routes`, as scoped background fibers.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<never, never, Routes | Leadership> = Layer.effectDiscard(
  Effect.gen(function*() {
    const routes = yield* Routes
    const leadership = yield* Leadership
    for (const job of routes.periodic) {
      // `@reboot` is about this replica starting; a cron job runs once per cluster
      const run = job.schedule.trim() === "@reboot" ? schedule(job, routes.middleware) : leadership.run(`periodic:${job.name}`, schedule(job, routes.middleware))
      yield* Effect.forkScoped(run)
    }
  })
)
