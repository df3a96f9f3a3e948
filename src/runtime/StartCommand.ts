/**
 * `effect-minos start [config.yml] [--services] [--entry module]`: runs a service (docs/runtime.md).
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"

/**
 * @category commands
 * @since 0.1.0
 */
export const command = Command.make("start", {
  config: Argument.String("config").pipe(
    Argument.withDescription("the config file (default: MINOS_CONFIGURATION_FILE_PATH or ./config.yml)"),
    Argument.optional
  ),
  services: Flag.Boolean("services").pipe(
    Flag.withDescription("PostgreSQL + Kafka instead of the embedded backends (as MINOS_STORAGE_BACKEND=postgres MINOS_BROKER_BACKEND=kafka)"),
    Flag.withDefault(false)
  ),
  entry: Flag.String("entry").pipe(
    Flag.withDescription("the module whose default export is the service layer (default: service.entry)"),
    Flag.optional
  )
}, (input) =>
  Effect.flatMap(Effect.promise(() => import("./Cli.ts")), (Cli) =>
    Cli.program({ config: Option.getOrUndefined(input.config), entry: Option.getOrUndefined(input.entry), services: input.services }))).pipe(
  Command.withDescription("Run a service until SIGTERM/SIGINT (then drain and exit 0)")
)
