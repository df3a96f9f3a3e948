/**
 * `effect-minos new service <name> [--dir D]`: scaffolds a runnable service into `D` (default
 * `./<name>`): config.yml on the embedded default, a decider aggregate, REST and broker handlers, a
 * projection, tests (`npm test`, node's runner) and a README. An existing non-empty folder is refused.
 *
 * @since 0.1.0
 */
import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { Failed } from "./internal/Process.ts"
import { files, namesOf } from "./internal/ServiceTemplate.ts"

interface PackageJson {
  readonly version: string
  readonly dependencies?: Record<string, string>
  readonly devDependencies?: Record<string, string>
}

const servicePattern = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/

const service = Command.make("service", {
  name: Argument.String("name").pipe(Argument.withDescription("the service name: lower-case letters, digits and '-' (e.g. orders)")),
  dir: Flag.String("dir").pipe(Flag.withDescription("where to write it (default ./<name>)"), Flag.optional)
}, (input) =>
  Effect.gen(function*() {
    if (!servicePattern.test(input.name)) {
      yield* Console.error(`not a service name: ${JSON.stringify(input.name)} (lower-case letters, digits and '-', starting with a letter)`)
      return yield* Effect.fail(new Failed({ code: 2 }))
    }
    const target = resolve(Option.getOrElse(input.dir, () => input.name))
    if (existsSync(target) && readdirSync(target).length > 0) {
      yield* Console.error(`${target} exists and is not empty; nothing written`)
      return yield* Effect.fail(new Failed({ code: 1 }))
    }
    const pkg = createRequire(import.meta.url)("../../package.json") as PackageJson
    const names = namesOf(input.name)
    const written = files(names, {
      effectMinos: `^${pkg.version}`,
      effect: pkg.dependencies?.["effect"] ?? "4.1.0",
      typescript: pkg.devDependencies?.["typescript"] ?? "7.0.2",
      typesNode: pkg.devDependencies?.["@types/node"] ?? "^22.19.0"
    })
    yield* Effect.sync(() => {
      for (const [path, text] of Object.entries(written)) {
        mkdirSync(dirname(join(target, path)), { recursive: true })
        writeFileSync(join(target, path), text)
      }
    })
    yield* Console.log(`created ${input.name} (aggregate ${names.aggregate}) in ${target}:`)
    for (const path of Object.keys(written).sort()) yield* Console.log(`  ${path}`)
    yield* Console.log(`next: cd ${target} && npm install && npm test && npm start`)
  })).pipe(Command.withDescription("Scaffold a runnable service (config.yml, a decider aggregate, handlers, a projection, tests, a README)"))

/**
 * @category commands
 * @since 0.1.0
 */
export const command = Command.make("new").pipe(
  Command.withDescription("Create a project from a template"),
  Command.withSubcommands([service])
)
