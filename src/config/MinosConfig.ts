/**
 * The service's configuration, read once from a YAML file and exposed as the `MinosConfig` service.
 *
 * Three formats load: minos v1 (the seed's `config.yml`) and minos v2 (`version: 2`, minos 0.6+),
 * both unchanged — their Python class paths are mapped to our backends by the table in
 * docs/config.md — and `version: effect-minos/1`, ours. Environment
 * variables override the file: `MINOS_` + the upper-cased key path (`MINOS_REST_PORT`), converted to
 * the key's type. Every problem is one {@link ConfigError} naming the file, the key path and what
 * was expected; nothing starts on a bad file.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Redacted, Schema, SchemaIssue } from "effect"
import { readFile } from "node:fs/promises"
import { resolve as resolvePath } from "node:path"
import { parseDocument } from "yaml"
import * as Env from "./internal/envOverrides.ts"
import * as Formats from "./internal/formats.ts"
import * as MinosV2 from "./internal/minosV2.ts"
import { type Leaf, leaves } from "./internal/schemaLeaves.ts"

export type {
  BrokerSettings,
  PostgresSettings,
  Resolved as Settings,
  SagaStorageSettings,
  SaslSettings,
  StorageSettings,
  TlsSettings
} from "./internal/formats.ts"
export { defaults, NATIVE_VERSION } from "./internal/formats.ts"

/**
 * Why a config could not be loaded.
 *
 * @category errors
 * @since 0.1.0
 */
export type ConfigErrorReason =
  | "FileNotFound"
  | "Unreadable"
  | "YamlSyntax"
  | "UnsupportedFormat"
  | "InvalidValue"
  | "UnknownClassPath"
  | "Inconsistent"

/**
 * The one error a config load fails with. `path` is the dotted key path (empty for file-level
 * problems); `message` already names the file and the key.
 *
 * @category errors
 * @since 0.1.0
 */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  reason: Schema.Literals(["FileNotFound", "Unreadable", "YamlSyntax", "UnsupportedFormat", "InvalidValue", "UnknownClassPath", "Inconsistent"]),
  file: Schema.String,
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return this.path === "" ? `${this.file}: ${this.detail}` : `${this.file}: ${this.path}: ${this.detail}`
  }
}

/**
 * The resolved configuration of one microservice.
 *
 * @category services
 * @since 0.1.0
 */
export class MinosConfig extends Context.Service<MinosConfig, Formats.Resolved>()("effect-minos/config/MinosConfig") {}

/** @since 0.1.0 */
export interface LoadOptions {
  /** Variables to read overrides from; `process.env` when omitted. */
  readonly env?: Readonly<Record<string, string | undefined>>
}

const fail = (reason: ConfigErrorReason, file: string, path: ReadonlyArray<string | number | symbol>, detail: string) =>
  new ConfigError({ reason, file, path: path.map(String).join("."), detail })

/**
 * Parses and resolves a config document that is already in memory (`file` names it in errors).
 *
 * @category constructors
 * @since 0.1.0
 */
export const parse = (file: string, text: string, options: LoadOptions = {}): Effect.Effect<Formats.Resolved, ConfigError> =>
  Effect.gen(function*() {
    const yamlDoc = parseDocument(text)
    if (yamlDoc.errors.length > 0) {
      const e = yamlDoc.errors[0]!
      const at = e.linePos?.[0]
      const where = at === undefined ? "" : ` (line ${at.line}, column ${at.col})`
      return yield* fail("YamlSyntax", file, [], `YAML syntax error${where}: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`)
    }
    const raw: unknown = yamlDoc.toJS()
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      return yield* fail("InvalidValue", file, [], "Expected a YAML mapping at the top level")
    }
    const doc = raw as Record<string, unknown>
    const version = doc["version"]
    const env = options.env ?? process.env
    if (version === Formats.NATIVE_VERSION) {
      return yield* decode(file, doc, Formats.Native, env, Formats.nativeAliases, Formats.resolveNative)
    }
    if (version === 2 || version === "2") {
      return yield* decode(file, doc, MinosV2.MinosV2, env, {}, MinosV2.resolveMinosV2, MinosV2.databaseLeaves(doc))
    }
    if (version === undefined || version === 1 || version === "1") {
      return yield* decode(file, doc, Formats.MinosV1, env, Formats.minosV1Aliases, Formats.resolveMinosV1)
    }
    return yield* fail(
      "UnsupportedFormat",
      file,
      ["version"],
      `Unsupported config version ${JSON.stringify(version)}; expected ${JSON.stringify(Formats.NATIVE_VERSION)}, 2 (minos v2) or a minos v1 file (no version key)`
    )
  })

const decode = <S extends Schema.Top>(
  file: string,
  doc: Record<string, unknown>,
  schema: S,
  env: Readonly<Record<string, string | undefined>>,
  aliases: Readonly<Record<string, ReadonlyArray<string>>>,
  resolve: (file: string, decoded: S["Type"]) => Formats.Resolved | Formats.Problem,
  extraLeaves: ReadonlyArray<Leaf> = []
): Effect.Effect<Formats.Resolved, ConfigError> =>
  Effect.gen(function*() {
    const { failures, overrides } = Env.collect([...leaves(schema.ast), ...extraLeaves], env, aliases)
    if (failures.length > 0) {
      const f = failures[0]!
      return yield* fail("InvalidValue", file, f.path, `${f.message} (from ${f.variable})`)
    }
    const merged = Env.apply(doc, overrides)
    const decoded = Schema.decodeUnknownExit(schema as unknown as Schema.Codec<S["Type"], unknown>)(merged, { errors: "all", onExcessProperty: "ignore" })
    if (decoded._tag === "Failure") {
      const issue = findIssue(decoded.cause)
      const first = issue === undefined ? undefined : SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues[0]
      const path = (first?.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? (p as { key: PropertyKey }).key : p))
      const variable = overrides.find((o) => o.path.join(".") === path.join("."))?.variable
      const suffix = variable === undefined ? "" : ` (from ${variable})`
      return yield* fail("InvalidValue", file, path, `${first?.message ?? "Invalid value"}${suffix}`)
    }
    const resolved = resolve(file, decoded.value)
    if ("reason" in resolved) return yield* fail(resolved.reason, file, resolved.path, resolved.message)
    return resolved
  })

const findIssue = (cause: unknown): SchemaIssue.Issue | undefined => {
  const reasons = (cause as { reasons?: ReadonlyArray<{ error?: unknown }> }).reasons ?? []
  for (const r of reasons) {
    const e = r.error
    if (Schema.isSchemaError(e)) return e.issue
  }
  return undefined
}

/**
 * Reads, validates and resolves a config file.
 *
 * @category constructors
 * @since 0.1.0
 */
export const load = Effect.fn("MinosConfig.load")(function*(file: string, options: LoadOptions = {}) {
  const absolute = resolvePath(file)
  const text = yield* Effect.tryPromise({
    try: () => readFile(absolute, "utf8"),
    catch: (e) =>
      (e as NodeJS.ErrnoException).code === "ENOENT"
        ? fail("FileNotFound", file, [], `Config file not found (looked at ${absolute})`)
        : fail("Unreadable", file, [], `Cannot read the config file: ${(e as Error).message}`)
  })
  return yield* parse(file, text, options)
})

/**
 * The config file path: `MINOS_CONFIGURATION_FILE_PATH` (minos's variable), else `./config.yml`.
 *
 * @since 0.1.0
 */
export const defaultPath = (env: Readonly<Record<string, string | undefined>> = process.env): string =>
  env["MINOS_CONFIGURATION_FILE_PATH"] ?? "config.yml"

/**
 * @category layers
 * @since 0.1.0
 */
export const layerFile = (file: string, options: LoadOptions = {}): Layer.Layer<MinosConfig, ConfigError> =>
  Layer.effect(MinosConfig, Effect.map(load(file, options), MinosConfig.of))

/**
 * A layer from settings already resolved (tests, programmatic setups).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerSettings = (settings: Formats.Resolved): Layer.Layer<MinosConfig> => Layer.succeed(MinosConfig, MinosConfig.of(settings))

/**
 * The resolved config as plain JSON, with every secret replaced by `"<redacted>"`.
 *
 * @since 0.1.0
 */
export const toJson = (settings: Formats.Resolved): unknown =>
  JSON.parse(JSON.stringify(settings, (_key, value: unknown) => (Redacted.isRedacted(value) ? "<redacted>" : value)))
