/**
 * `effect-minos projections list|rebuild …`: opens the service's storage from its config (like
 * `dead-letters`). `list` prints each registered projection's generation, checkpoint, lag, parked
 * events and documents. `rebuild <name>` asks the running service's follower to replay the log into
 * a new generation and prints its progress until it is live (`--detach` returns at once).
 *
 * @since 0.1.0
 */
import { Console, Effect, Layer, Option, Schedule } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as MinosConfig from "../config/MinosConfig.ts"
import { describeCause } from "../internal/Outcome.ts"
import type * as ProjectionModule from "../projection/Projection.ts"
import type * as ProjectionRunner from "../projection/ProjectionRunner.ts"
import type * as Storage from "../storage/Storage.ts"
import { Failed } from "./internal/Process.ts"

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

const config = Argument.String("config").pipe(Argument.withDescription("the config file (default ./config.yml)"), Argument.optional)

interface Modules {
  readonly Projection: typeof ProjectionModule
  readonly ProjectionRunner: typeof ProjectionRunner
}

/** Runs `body` on the storage the config names (modules loaded here, not with the CLI); any failure is printed and exits 1. */
const withStorage = <A, E>(file: Option.Option<string>, body: (m: Modules) => Effect.Effect<A, E, Storage.Services>) =>
  Effect.gen(function*() {
    const settings = yield* MinosConfig.load(Option.getOrElse(file, () => MinosConfig.defaultPath()))
    const [{ layerStorage }, Projection, Runner] = yield* Effect.promise(() =>
      Promise.all([import("./Microservice.ts"), import("../projection/Projection.ts"), import("../projection/ProjectionRunner.ts")]))
    return yield* Effect.scoped(body({ Projection, ProjectionRunner: Runner }).pipe(Effect.provide(layerStorage.pipe(Layer.provide(MinosConfig.layerSettings(settings))))))
  }).pipe(
    Effect.catchCause((cause) => Effect.andThen(Console.error(`projections: ${describeCause(cause)}`), Effect.fail(new Failed({ code: 1 }))))
  )

const list = Command.make("list", { config }, (input) =>
  withStorage(input.config, ({ ProjectionRunner }) => Effect.gen(function*() {
    const all = yield* ProjectionRunner.statuses
    for (const s of all) yield* Console.log(line(s))
    yield* Console.log(`${all.length} projection(s)`)
  }))).pipe(Command.withDescription("Each projection: generation, checkpoint, lag, parked events, documents"))

const rebuild = Command.make("rebuild", {
  name: Argument.String("name").pipe(Argument.withDescription("the projection")),
  config,
  detach: Flag.Boolean("detach").pipe(Flag.withDescription("return once requested, without following the progress"), Flag.withDefault(false))
}, (input) =>
  withStorage(input.config, ({ Projection, ProjectionRunner }) => Effect.gen(function*() {
    const name = input.name
    const request = yield* ProjectionRunner.requestRebuild(name)
    yield* Console.log(`${name}: rebuild into generation ${request.generation} requested; the service's follower replays the log`)
    if (input.detach) return
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
  }))).pipe(Command.withDescription("Replay a projection into a new generation (the running service's follower does it)"))

/**
 * @category commands
 * @since 0.1.0
 */
export const command = Command.make("projections").pipe(
  Command.withDescription("Read models kept by projections"),
  Command.withSubcommands([list, rebuild])
)
