/**
 * The files `effect-minos new service <name>` writes: a runnable service on the embedded default
 * (LMDB + in-process broker), with a decider aggregate, REST and broker handlers, a projection, tests on node's own runner, and a README. Plain strings, so they ship in dist/.
 */

export interface Names {
  /** The service name as given (`orders`): REST paths, topics' service, consumer group. */
  readonly service: string
  /** The aggregate (`Order`). */
  readonly aggregate: string
  /** Lower-camel aggregate (`order`). */
  readonly variable: string
}

/** `orders` → `Order`, `room-bookings` → `RoomBooking`. */
export const namesOf = (service: string): Names => {
  const words = service.split(/[-_]/).filter((w) => w.length > 0)
  const last = words.length - 1
  const singular = words.map((w, i) => (i === last && w.length > 3 && w.endsWith("s") && !w.endsWith("ss") ? w.slice(0, -1) : w))
  const aggregate = singular.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("")
  return { service, aggregate, variable: aggregate[0]!.toLowerCase() + aggregate.slice(1) }
}

export interface Versions {
  readonly effectMinos: string
  readonly effect: string
  readonly typescript: string
  readonly typesNode: string
}

export const files = (n: Names, v: Versions): Record<string, string> => {
  const A = n.aggregate
  const a = n.variable
  const s = n.service
  return {
    "package.json": JSON.stringify({
      name: s,
      version: "0.1.0",
      private: true,
      type: "module",
      engines: { node: ">=22.19" },
      scripts: {
        start: "effect-minos start",
        test: "node --test test/*.test.ts",
        check: "tsc --noEmit"
      },
      dependencies: { "effect": v.effect, "effect-minos": v.effectMinos },
      devDependencies: { "@types/node": v.typesNode, "typescript": v.typescript }
    }, null, 2) + "\n",

    "tsconfig.json": JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2022"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        types: ["node"],
        strict: true,
        exactOptionalPropertyTypes: true,
        erasableSyntaxOnly: true,
        verbatimModuleSyntax: true,
        allowImportingTsExtensions: true,
        skipLibCheck: true,
        noEmit: true
      },
      include: ["src", "test"]
    }, null, 2) + "\n",

    ".gitignore": "node_modules/\ndata/\n",

    "config.yml": `# The ${s} service (effect-minos/1 format, docs/config.md of effect-minos).
# Embedded default: LMDB files under ./data and the in-process broker, no server to install.
# PostgreSQL + Kafka: \`npx effect-minos start --services\`, or set storage.backend / broker.backend.
# Any key can be overridden with MINOS_ + its upper-cased path, e.g. MINOS_REST_PORT=9000.
version: effect-minos/1
service:
  name: ${s}
  aggregate: ${A}
  entry: src/main.ts
rest:
  host: 127.0.0.1
  port: 8080
storage:
  backend: lmdb
  lmdb:
    path: ./data/${s}
  postgres:
    host: localhost
    port: 5432
    database: ${s.replace(/-/g, "_")}_db
    user: minos
    password: min0s
broker:
  backend: memory
  host: localhost
  port: 9092
`,

    [`src/${A}.ts`]: `/**
 * The ${A} aggregate: a pure decider. \`decide\` turns a command and the current state into events
 * (or a typed error), \`evolve\` folds an event into the state. No IO: the repository loads, decides,
 * and appends the events, the snapshot and the outbox rows in one transaction.
 */
import { Context, Result, Schema } from "effect"
import * as Aggregate from "effect-minos/domain/Aggregate"
import type * as Repository from "effect-minos/command/Repository"

export const Title = Schema.String.check(Schema.isBetweenLength(1, 200))

export const State = Schema.Union([
  Schema.TaggedStruct("Absent", {}),
  Schema.TaggedStruct("Open", { title: Title }),
  Schema.TaggedStruct("Closed", { title: Title })
])
export type State = typeof State.Type

export const ${A}Created = Schema.TaggedStruct("${A}Created", { title: Title })
export const ${A}Renamed = Schema.TaggedStruct("${A}Renamed", { title: Title })
export const ${A}Closed = Schema.TaggedStruct("${A}Closed", {})
export const Event = Schema.Union([${A}Created, ${A}Renamed, ${A}Closed])
export type Event = typeof Event.Type

export type Command =
  | { readonly _tag: "Create"; readonly title: string }
  | { readonly _tag: "Rename"; readonly title: string }
  | { readonly _tag: "Close" }

export class ${A}NotFound extends Schema.TaggedError<${A}NotFound>()("${A}NotFound", {}) {}
export class ${A}Exists extends Schema.TaggedError<${A}Exists>()("${A}Exists", {}) {}
export class ${A}IsClosed extends Schema.TaggedError<${A}IsClosed>()("${A}IsClosed", {}) {}
export type ${A}Error = ${A}NotFound | ${A}Exists | ${A}IsClosed

const initialState: State = { _tag: "Absent" }

export const decide = (command: Command, state: State): Result.Result<ReadonlyArray<Event>, ${A}Error> => {
  switch (command._tag) {
    case "Create":
      return state._tag === "Absent" ? Result.succeed([${A}Created.make({ title: command.title })]) : Result.fail(new ${A}Exists())
    case "Rename":
      if (state._tag === "Absent") return Result.fail(new ${A}NotFound())
      if (state._tag === "Closed") return Result.fail(new ${A}IsClosed())
      // renaming to the same title changes nothing: no event
      return state.title === command.title ? Result.succeed([]) : Result.succeed([${A}Renamed.make({ title: command.title })])
    case "Close":
      if (state._tag === "Absent") return Result.fail(new ${A}NotFound())
      return state._tag === "Closed" ? Result.succeed([]) : Result.succeed([${A}Closed.make({})])
  }
}

export const evolve = (state: State, event: Event): State => {
  switch (event._tag) {
    case "${A}Created":
      return { _tag: "Open", title: event.title }
    case "${A}Renamed":
      return state._tag === "Absent" ? state : { ...state, title: event.title }
    case "${A}Closed":
      return state._tag === "Absent" ? state : { _tag: "Closed", title: state.title }
  }
}

export const ${A} = Aggregate.make({ name: "${A}", initialState, decide, evolve, events: Event, state: State, exists: (s) => s._tag !== "Absent" })

export class ${A}s extends Context.Service<${A}s, Repository.Repository<typeof ${A}>>()("${s}/${A}s") {}
`,

    [`src/${A}View.ts`]: `/**
 * The read side: a projection of the ${A} aggregate's events into the \`${s}\` collection, queried
 * by \`GET /${s}\`. Inline: a command's own transaction updates it, so a caller reads its own write;
 * the framework applies each ${a}'s events once, in version order.
 */
import { Effect, Option, Schema, Stream } from "effect"
import * as Projection from "effect-minos/projection/Projection"
import * as Condition from "effect-minos/query/Condition"
import { ${A} } from "./${A}.ts"

export const ${A}View = Schema.Struct({ uuid: Schema.String, version: Schema.Int, title: Schema.String, closed: Schema.Boolean })
export type ${A}View = typeof ${A}View.Type

export const ${A}Views = Projection.make({
  name: "${A}View",
  aggregate: ${A},
  collection: "${s}",
  schema: ${A}View,
  mode: "inline",
  on: {
    ${A}Created: (_, event) => Option.some({ uuid: event.uuid, version: event.version, title: event.data.title, closed: false }),
    ${A}Renamed: (view, event) => Option.map(view, (v) => ({ ...v, version: event.version, title: event.data.title })),
    ${A}Closed: (view, event) => Option.map(view, (v) => ({ ...v, version: event.version, closed: true }))
  }
})

export const list = (options: { readonly open?: boolean | undefined }) =>
  ${A}Views.find({
    condition: options.open === true ? Condition.equal("closed", false) : Condition.TRUE,
    ordering: Condition.asc("title"),
    limit: 1000
  }).pipe(Stream.runCollect, Effect.map((items) => Array.from(items)))
`,

    "src/Handlers.ts": `/**
 * The ${s} service's handlers: REST and broker commands on the write side (the ${A} aggregate) and
 * a REST query on the read side (the \`${A}Views\` projection).
 */
import { Effect, Schema } from "effect"
import * as Router from "effect-minos/router/Router"
import { ${A}, ${A}s, Title } from "./${A}.ts"
import * as ${A}View from "./${A}View.ts"

const Uuid = Schema.String.check(Schema.isUUID())
const Ref = Schema.Struct({ uuid: Schema.String, version: Schema.Int })
export const ${A}Body = Schema.Struct({ uuid: Schema.String, version: Schema.Int, title: Schema.String, closed: Schema.Boolean })

const create = (title: string) =>
  Effect.flatMap(${A}s, (repo) => repo.create({ _tag: "Create", title })).pipe(Effect.map((h) => ({ uuid: h.id, version: h.version })))

const rename = (uuid: string, title: string) =>
  Effect.flatMap(${A}s, (repo) => repo.handle(uuid, { _tag: "Rename", title })).pipe(Effect.map((h) => ({ uuid, version: h.version })))

const close = (uuid: string) =>
  Effect.flatMap(${A}s, (repo) => repo.handle(uuid, { _tag: "Close" })).pipe(Effect.map((h) => ({ uuid, version: h.version })))

const get = (uuid: string) =>
  Effect.flatMap(${A}s, (repo) => repo.get(uuid)).pipe(Effect.map((loaded) => {
    const state = loaded.state as Exclude<typeof ${A}.initialState, { _tag: "Absent" }>
    return { uuid: loaded.id, version: loaded.version, title: state.title, closed: state._tag === "Closed" }
  }))

export const handlers = [
  Router.rest("POST", "/${s}", { body: Schema.Struct({ title: Title }), success: Ref, status: 201, summary: "Create a ${a}" }, ({ body }) => create(body.title)),
  Router.rest("GET", "/${s}/:uuid", { params: Schema.Struct({ uuid: Uuid }), success: ${A}Body, summary: "One ${a} (write side)" }, ({ params }) => get(params.uuid)),
  Router.rest("PATCH", "/${s}/:uuid", { params: Schema.Struct({ uuid: Uuid }), body: Schema.Struct({ title: Title }), success: Ref, summary: "Rename a ${a}" }, ({ body, params }) =>
    rename(params.uuid, body.title)),
  Router.rest("POST", "/${s}/:uuid/close", { params: Schema.Struct({ uuid: Uuid }), success: Ref, summary: "Close a ${a}" }, ({ params }) => close(params.uuid)),
  Router.rest("GET", "/${s}", { query: Schema.Struct({ open: Schema.optional(Schema.Literals(["true", "false"])) }), summary: "${A}s from the read model (eventually consistent)" }, ({ query }) =>
    Effect.map(${A}View.list({ open: query.open === "true" }), (items) => ({ items }))),
  Router.command("Create${A}", { payload: Schema.Struct({ title: Title }), success: Ref }, ({ title }) => create(title)),
  Router.command("Close${A}", { payload: Schema.Struct({ uuid: Uuid }), success: Ref }, ({ uuid }) => close(uuid))
] as const
`,

    "src/main.ts": `/**
 * The ${s} microservice as one layer; \`npx effect-minos start\` runs it (config.yml names this module).
 */
import * as Repository from "effect-minos/command/Repository"
import * as Microservice from "effect-minos/runtime/Microservice"
import { ${A}, ${A}s } from "./${A}.ts"
import { ${A}Views } from "./${A}View.ts"
import { handlers } from "./Handlers.ts"

export default Microservice.layer({
  handlers,
  services: Repository.layer(${A}s, ${A}),
  projections: [${A}Views],
  // its domain events, described in /spec/asyncapi
  aggregates: [${A}]
})
`,

    [`test/${A}.test.ts`]: `// The decider, given/when/then (no IO): node --test test/*.test.ts
import { test } from "node:test"
import * as AggregateSpec from "effect-minos/testing/AggregateSpec"
import { ${A} } from "../src/${A}.ts"

const spec = AggregateSpec.of(${A})
const created = { _tag: "${A}Created", title: "First" } as const

test("create: a new ${a} is created once", () => {
  spec.given([]).when({ _tag: "Create", title: "First" }).then([created])
  spec.given([created]).when({ _tag: "Create", title: "Again" }).thenFails("${A}Exists")
})

test("rename: changes the title, the same title is no event, a missing ${a} fails", () => {
  spec.given([created]).when({ _tag: "Rename", title: "Second" }).then([{ _tag: "${A}Renamed", title: "Second" }])
  spec.given([created]).when({ _tag: "Rename", title: "First" }).thenNothingHappened()
  spec.given([]).when({ _tag: "Rename", title: "x" }).thenFails("${A}NotFound")
})

test("close: once, and a closed ${a} cannot be renamed", () => {
  spec.given([created]).when({ _tag: "Close" }).then([{ _tag: "${A}Closed" }])
  spec.given([created, { _tag: "${A}Closed" }]).when({ _tag: "Close" }).thenNothingHappened()
  spec.given([created, { _tag: "${A}Closed" }]).when({ _tag: "Rename", title: "x" }).thenFails("${A}IsClosed")
})
`,

    "test/Service.test.ts": `// The whole service in this process on the embedded backends (a temporary folder), over HTTP.
import { strict as assert } from "node:assert"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { Effect, Layer, Option } from "effect"
import * as MinosConfig from "effect-minos/config/MinosConfig"
import * as Microservice from "effect-minos/runtime/Microservice"
import service from "../src/main.ts"

const http = (method: string, url: string, body?: unknown) =>
  Effect.promise(async () => {
    const res = await fetch(url, { method, headers: { "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    return { status: res.status, body: await res.json() as any }
  })

test("create, rename and read back a ${a}; the projection has it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "${s}-"))
  try {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const settings = yield* MinosConfig.load("config.yml", {
        env: { MINOS_REST_PORT: "0", MINOS_STORAGE_LMDB_PATH: join(dir, "store"), MINOS_SAGA_STORAGE_PATH: join(dir, "sagas.lmdb") }
      })
      const context = yield* Layer.build(service.pipe(Layer.provide(MinosConfig.layerSettings(settings))))
      const { url } = Option.getOrThrow(Microservice.httpAddress(context))

      const created = yield* http("POST", \`\${url}/${s}\`, { title: "First" })
      assert.equal(created.status, 201)
      const renamed = yield* http("PATCH", \`\${url}/${s}/\${created.body.uuid}\`, { title: "Second" })
      assert.equal(renamed.status, 200)
      const got = yield* http("GET", \`\${url}/${s}/\${created.body.uuid}\`)
      assert.deepEqual(got.body, { uuid: created.body.uuid, version: 2, title: "Second", closed: false })
      const bad = yield* http("POST", \`\${url}/${s}\`, { title: "" })
      assert.equal(bad.status, 400)

      // the projection is inline: the command's transaction updated it
      const listed = yield* http("GET", \`\${url}/${s}\`)
      assert.deepEqual(listed.body.items, [{ uuid: created.body.uuid, version: 2, title: "Second", closed: false }])
    })))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
`,

    "README.md": `# ${s}

An [effect-minos](https://www.npmjs.com/package/effect-minos) microservice: the \`${A}\` aggregate
(event-sourced, a pure decider), REST and broker handlers, and a projection as its read model.

\`\`\`sh
npm install
npm test                    # the decider (AggregateSpec) and the whole service over HTTP, embedded
npm start                   # serves on http://127.0.0.1:8080 (LMDB under ./data, in-process broker)
npx effect-minos start --services   # on PostgreSQL + Kafka instead
\`\`\`

\`\`\`sh
curl -X POST localhost:8080/${s} -H 'content-type: application/json' -d '{"title":"First"}'   # 201 {"uuid","version"}
curl localhost:8080/${s}/<uuid>                                                             # the ${a}
curl localhost:8080/${s}                                                                    # the read model
curl localhost:8080/spec/openapi                                                            # OpenAPI of the routes
\`\`\`

| file | what |
| --- | --- |
| \`config.yml\` | the service's config (\`npx effect-minos config check\` prints it resolved) |
| \`src/${A}.ts\` | the aggregate: state and event Schemas, \`decide\`, \`evolve\` |
| \`src/${A}View.ts\` | the read model: a projection of the ${A} events |
| \`src/Handlers.ts\` | REST routes, broker commands, event handlers |
| \`src/main.ts\` | the service layer \`effect-minos start\` runs |
| \`test/\` | \`node --test\`: the decider given/when/then, and the service end to end |
`
  }
}
