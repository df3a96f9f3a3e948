/**
 * `effect-minos projections list|rebuild …`: opens the service's storage from its config (like
 * `dead-letters`). `list` prints each registered projection's generation, checkpoint, lag, parked
 * events and documents. `rebuild <name>` asks the running service's follower to replay the log into
 * a new generation and prints its progress until it is live (`--detach` returns at once).
 *
 * @since 0.1.0
 */
import { Console, Effect, Layer, Schedule } from "effect"
import * as MinosConfig from "../config/MinosConfig.ts"
import { describeCause } from "../internal/Outcome.ts"
import * as Projection from "../projection/Projection.ts"
import * as ProjectionRunner from "../projection/ProjectionRunner.ts"
import type * as Storage from "../storage/Storage.ts"
import { layerStorage } from "./Microservice.ts"

const line = (s: ProjectionRunner.Status): string =>
  [
    s.name,
    `${s.aggregate} ${s.mode}/${s.source}`,
    `generation ${s.state.generation}`,
    `checkpoint ${s.state.checkpoint}`,
    s.lag === undefined ? "lag -" : `lag ${s.lag}${s.lagCapped ? "+" : ""}`,
    `parked ${s.parked}`,
    `documents ${s.documents}`,
    s.state.rebuild === undefined ? "" : `rebuilding g${s.state.rebuild.generation}: ${s.state.rebuild.applied} event(s)`
  ].filter((x) => x !== "").join("\t")

/** Runs the command; resolves to the exit code. */
export const projections = (args: ReadonlyArray<string>): Effect.Effect<number> => {
  const [verb, ...rest] = args
  const positional = rest.filter((a) => !a.startsWith("--"))
  const detach = rest.includes("--detach")
  const run = <A, E>(file: string | undefined, body: Effect.Effect<A, E, Storage.Services>): Effect.Effect<A, unknown> =>
    Effect.gen(function*() {
      const settings = yield* MinosConfig.load(file ?? MinosConfig.defaultPath())
      return yield* Effect.scoped(body.pipe(Effect.provide(layerStorage.pipe(Layer.provide(MinosConfig.layerSettings(settings))))))
    })
  let program: Effect.Effect<number, unknown>
  if (verb === "list") {
    program = run(positional[0], Effect.gen(function*() {
      const all = yield* ProjectionRunner.statuses
      for (const s of all) yield* Console.log(line(s))
      yield* Console.log(`${all.length} projection(s)`)
      return 0
    }))
  } else if (verb === "rebuild" && positional[0] !== undefined) {
    const name = positional[0]
    program = run(positional[1], Effect.gen(function*() {
      const request = yield* ProjectionRunner.requestRebuild(name)
      yield* Console.log(`${name}: rebuild into generation ${request.generation} requested; the service's follower replays the log`)
      if (detach) return 0
      const progress = Effect.gen(function*() {
        const { state } = yield* Projection.stateOf(name)
        if (state.rebuild === undefined && state.generation >= request.generation) {
          yield* Console.log(`${name}: generation ${state.generation} is live (${state.lastRebuild?.applied ?? state.applied} event(s) replayed)`)
          return true
        }
        yield* Console.log(state.rebuild?.startedAt == null ? `${name}: waiting for the service to start the rebuild` : `${name}: ${state.rebuild.applied} event(s) replayed`)
        return false
      })
      yield* progress.pipe(Effect.repeat({ schedule: Schedule.spaced("1 second"), until: (done) => done }))
      return 0
    }))
  } else {
    return Effect.as(Console.error("usage: effect-minos projections list [config.yml] | rebuild <name> [config.yml] [--detach]"), 2)
  }
  return program.pipe(Effect.catchCause((cause) => Effect.as(Console.error(`projections: ${describeCause(cause)}`), 1)))
}
