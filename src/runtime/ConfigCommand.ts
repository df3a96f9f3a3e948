/**
 * `effect-minos config check [config.yml]`: prints the resolved config as JSON, secrets redacted,
 * or the `ConfigError` (exit 1).
 *
 * @since 0.1.0
 */
import { Console, Effect, Option } from "effect"
import { Argument, Command } from "effect/cli"
import * as MinosConfig from "../config/MinosConfig.ts"
import { Failed } from "./internal/Process.ts"

const check = Command.make("check", {
  config: Argument.String("config").pipe(Argument.withDescription("the config file (default ./config.yml)"), Argument.optional)
}, (input) =>
  MinosConfig.load(Option.getOrElse(input.config, () => MinosConfig.defaultPath())).pipe(
    Effect.flatMap((settings) => Console.log(JSON.stringify(MinosConfig.toJson(settings), null, 2))),
    Effect.catchTag("ConfigError", (e) => Effect.andThen(Console.error(`ConfigError (${e.reason}): ${e.message}`), Effect.fail(new Failed({ code: 1 }))))
  )).pipe(Command.withDescription("Print the resolved config (secrets redacted), or what is wrong with it"))

/**
 * @category commands
 * @since 0.1.0
 */
export const command = Command.make("config").pipe(
  Command.withDescription("Inspect a config file"),
  Command.withSubcommands([check])
)
