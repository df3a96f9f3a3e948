/**
 * How every CLI command runs as the process: exit codes, one line per failure, signals.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Data, Effect, Exit, Option } from "effect"
import * as CliError from "effect/cli/CliError"
import type * as MinosConfig from "../../config/MinosConfig.ts"
import { describeCause } from "../../internal/Outcome.ts"
import type { RouteError } from "../../router/Router.ts"
import type { StartupError } from "../Microservice.ts"

const cannotStart = (line: string) => Effect.andThen(Effect.logError(`cannot start: ${line}`), Effect.fail(new Failed({ code: 1 })))

/**
 * A command failed and already said why (on stderr); the process exits with `code`.
 *
 * @category errors
 * @since 0.1.0
 */
export class Failed extends Data.TaggedError("Failed")<{ readonly code: number }> {}

/** A parse error or `--help`/`--version` outcome of `effect/cli`: it printed it already. */
const isCliError = (e: unknown): boolean => typeof e === "object" && e !== null && "_tag" in e && CliError.isCliError(e)

/**
 * Runs an effect as the process: interruption by a signal exits 0; a start-up failure logs one line
 * and exits 1; `Failed` exits with its code; a CLI parse error (already printed) exits 1.
 *
 * @since 0.1.0
 */
export const runMain = <A, E>(effect: Effect.Effect<A, E | StartupError | RouteError | MinosConfig.ConfigError>): void =>
  (effect as Effect.Effect<A, StartupError | RouteError | MinosConfig.ConfigError | Failed>).pipe(
    Effect.catchTags({
      StartupError: (e) => cannotStart(`${e.dependency}: ${e.message}`),
      ConfigError: (e) => cannotStart(`config: ${e.message}`),
      RouteError: (e) => cannotStart(`routes: ${e.message}`)
    }),
    Effect.tapCause((cause) =>
      Cause.hasInterruptsOnly(cause) || Cause.findErrorOption(cause).pipe(Option.exists((e) => e instanceof Failed || isCliError(e)))
        ? Effect.void
        : Effect.logError(`failed: ${describeCause(cause)}`)
    ),
    NodeRuntime.runMain({
      disableErrorReporting: true,
      teardown: (exit, onExit) => {
        if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
        const error = Cause.findErrorOption(exit.cause)
        onExit(Option.isSome(error) && error.value instanceof Failed ? error.value.code : 1)
      }
    })
  )
