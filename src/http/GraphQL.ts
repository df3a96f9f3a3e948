/**
 * GraphQL over the service's `Router.graphql.query/mutation` handlers, as minos's GraphQL router:
 * `POST /{service}/graphql` executes a request (`{ query, variables, operationName }`) and
 * `GET /{service}/graphql/schema` returns the SDL. The GraphQL types are generated from the
 * handlers' Schemas (encoded side): strings, numbers (`Int` when the Schema checks for integers,
 * else `Float`), booleans, string literals (an enum when they are valid names), structs (object
 * types for outputs, input types for arguments), arrays; optional fields are nullable, anything
 * else is the `JSON` scalar. Top-level fields are nullable, so a failing field keeps the others'
 * data. Arguments are decoded with the handler's Schema before it runs and
 * outputs encoded with its output Schema.
 *
 * Errors as minos mapped them: the response status is the highest of 200, 400 (a request GraphQL
 * refuses: syntax, validation, bad arguments), each failed field's own status (as REST answers it:
 * 404, 409, a domain error's `HttpStatus`, 503…) and 500 (anything unexpected); the body keeps
 * `data` and lists `errors` with `extensions: { error, status }`.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit, Option, Schema, SchemaAST } from "effect"
import {
  GraphQLBoolean,
  GraphQLEnumType,
  type GraphQLError,
  GraphQLFloat,
  type GraphQLFieldConfig,
  type GraphQLInputType,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  type GraphQLOutputType,
  GraphQLScalarType,
  GraphQLSchema,
  GraphQLString,
  graphql,
  printSchema
} from "graphql"
import type { GraphQLHandler, RoutesShape } from "../router/Router.ts"

/** Any JSON value, for Schemas with no GraphQL equivalent (unions, records, unknown). */
const JSONScalar = new GraphQLScalarType({
  name: "JSON",
  description: "Any JSON value",
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: (ast) => {
    const value = (node: any): unknown => {
      switch (node.kind) {
        case "StringValue":
        case "EnumValue":
          return node.value
        case "IntValue":
        case "FloatValue":
          return Number(node.value)
        case "BooleanValue":
          return node.value
        case "NullValue":
          return null
        case "ListValue":
          return node.values.map(value)
        case "ObjectValue":
          return Object.fromEntries(node.fields.map((f: any) => [f.name.value, value(f.value)]))
        default:
          return undefined
      }
    }
    return value(ast)
  }
})

const nameOk = (s: string) => /^[_A-Za-z][_0-9A-Za-z]*$/.test(s)
const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

/** Builds GraphQL types from Schema ASTs, naming object types by where they first appear. */
class Types {
  readonly outputs = new Map<SchemaAST.AST, GraphQLOutputType>()
  readonly inputs = new Map<SchemaAST.AST, GraphQLInputType>()
  readonly names = new Set<string>()

  unique(base: string): string {
    let name = nameOk(base) ? base : "Type"
    for (let i = 2; this.names.has(name); i++) name = `${base}${i}`
    this.names.add(name)
    return name
  }

  /** The nullable GraphQL type of an AST, and whether the AST admits absence/null. */
  private scalar(ast: SchemaAST.AST, name: string, input: boolean): { type: GraphQLOutputType & GraphQLInputType; nullable: boolean } | undefined {
    switch (ast._tag) {
      case "String":
      case "TemplateLiteral":
        return { type: GraphQLString, nullable: false }
      case "Number":
        return { type: isIntAst(ast) ? GraphQLInt : GraphQLFloat, nullable: false }
      case "Boolean":
        return { type: GraphQLBoolean, nullable: false }
      case "Literal":
        return typeof ast.literal === "string" ? { type: this.enumOf([ast.literal], name), nullable: false }
          : typeof ast.literal === "number" ? { type: GraphQLFloat, nullable: false }
          : typeof ast.literal === "boolean" ? { type: GraphQLBoolean, nullable: false }
          : undefined
      default:
        void input
        return undefined
    }
  }

  private enumCache = new Map<string, GraphQLEnumType>()
  private enumOf(values: ReadonlyArray<string>, name: string): GraphQLOutputType & GraphQLInputType {
    if (!values.every(nameOk)) return GraphQLString
    const key = values.join("|")
    const cached = this.enumCache.get(key)
    if (cached !== undefined) return cached
    const e = new GraphQLEnumType({ name: this.unique(name), values: Object.fromEntries(values.map((v) => [v, { value: v }])) })
    this.enumCache.set(key, e)
    return e
  }

  /** The GraphQL type of a field or argument; `nullable` when it may be absent. */
  of(ast0: SchemaAST.AST, name: string, input: boolean): { type: GraphQLOutputType | GraphQLInputType; nullable: boolean } {
    const ast = SchemaAST.toEncoded(ast0)
    if (ast._tag === "Union") {
      const present = ast.types.filter((t) => t._tag !== "Undefined" && t._tag !== "Null")
      const nullable = present.length < ast.types.length
      if (present.length === 1) {
        const only = this.of(present[0]!, name, input)
        return { type: only.type, nullable: nullable || only.nullable }
      }
      if (present.length > 0 && present.every((t) => t._tag === "Literal" && typeof t.literal === "string")) {
        return { type: this.enumOf(present.map((t) => String((t as SchemaAST.Literal).literal)), name), nullable }
      }
      return { type: JSONScalar, nullable }
    }
    const s = this.scalar(ast, name, input)
    if (s !== undefined) return s
    if (ast._tag === "Arrays" && ast.rest.length === 1 && ast.elements.length === 0) {
      const item = this.of(ast.rest[0]!, `${name}Item`, input)
      const inner = item.nullable ? item.type : new GraphQLNonNull(item.type as never)
      return { type: new GraphQLList(inner as never), nullable: false }
    }
    if (ast._tag === "Objects" && ast.propertySignatures.length > 0 && ast.indexSignatures.length === 0) {
      return { type: input ? this.inputObject(ast, name) : this.outputObject(ast, name), nullable: false }
    }
    return { type: JSONScalar, nullable: false }
  }

  private fieldsOf(ast: SchemaAST.Objects, name: string, input: boolean) {
    const fields: Record<string, { type: any; description?: string }> = {}
    for (const ps of ast.propertySignatures) {
      if (typeof ps.name !== "string" || !nameOk(ps.name)) continue
      const t = this.of(ps.type, `${name}${pascal(ps.name)}`, input)
      const optional = ps.type.context?.isOptional === true
      fields[ps.name] = { type: t.nullable || optional ? t.type : new GraphQLNonNull(t.type as never) }
    }
    return fields
  }

  private outputObject(ast: SchemaAST.Objects, name: string): GraphQLOutputType {
    const cached = this.outputs.get(ast)
    if (cached !== undefined) return cached
    const typeName = this.unique(identifierOf(ast) ?? name)
    const type: GraphQLObjectType = new GraphQLObjectType({ name: typeName, fields: () => this.fieldsOf(ast, typeName, false) })
    this.outputs.set(ast, type)
    return type
  }

  private inputObject(ast: SchemaAST.Objects, name: string): GraphQLInputType {
    const cached = this.inputs.get(ast)
    if (cached !== undefined) return cached
    const typeName = this.unique(`${identifierOf(ast) ?? name}Input`)
    const type = new GraphQLInputObjectType({ name: typeName, fields: () => this.fieldsOf(ast, typeName, true) })
    this.inputs.set(ast, type)
    return type
  }

  /** The arguments of a field: one per property of the args Struct. */
  args(schema: Schema.Top | undefined, name: string): Record<string, { type: GraphQLInputType }> {
    if (schema === undefined) return {}
    const ast = SchemaAST.toEncoded(schema.ast)
    if (ast._tag !== "Objects") return { input: { type: new GraphQLNonNull(this.of(ast, `${name}Input`, true).type as never) } }
    const out: Record<string, { type: GraphQLInputType }> = {}
    for (const ps of ast.propertySignatures) {
      if (typeof ps.name !== "string" || !nameOk(ps.name)) continue
      const t = this.of(ps.type, `${pascal(name)}${pascal(ps.name)}`, true)
      const optional = ps.type.context?.isOptional === true
      out[ps.name] = { type: (t.nullable || optional ? t.type : new GraphQLNonNull(t.type as never)) as GraphQLInputType }
    }
    return out
  }
}

const identifierOf = (ast: SchemaAST.AST): string | undefined => {
  const id = (ast.annotations as { identifier?: unknown } | undefined)?.identifier
  return typeof id === "string" && nameOk(id) ? id : undefined
}

/** Whether a number Schema checks for integers (`Schema.Int`, `Schema.isInt()`). */
const isIntAst = (ast: SchemaAST.AST): boolean =>
  (ast.checks ?? []).some((check) => {
    const annotations = (check as { annotations?: { representation?: { id?: unknown }; arbitraryConstraint?: { number?: unknown } } }).annotations
    return annotations?.representation?.id === "effect/schema/isInt" || annotations?.arbitraryConstraint?.number === "integer"
  })

/** A failed field: its HTTP status and error body, as the REST edge would answer it. */
export interface FieldFailure {
  readonly status: number
  readonly body: Readonly<Record<string, unknown>>
}

/** Carries a failure through graphql-js's resolver errors. */
class FieldError extends Error {
  readonly failure: FieldFailure
  constructor(failure: FieldFailure) {
    super(typeof failure.body["message"] === "string" && failure.body["message"] !== "" ? failure.body["message"] : String(failure.body["error"] ?? "Error"))
    this.failure = failure
  }
}

/**
 * How the server runs a field (its middleware, the request, the services) and what a failure
 * answers; one per HTTP request, passed to the resolvers as GraphQL's context.
 *
 * @category models
 * @since 0.1.0
 */
export interface Context {
  readonly run: (handler: GraphQLHandler, effect: Effect.Effect<unknown, unknown, any>) => Promise<Exit.Exit<unknown, unknown>>
  readonly failureOf: (cause: Cause.Cause<unknown>) => FieldFailure
}

/**
 * The schema of a service's GraphQL handlers; `undefined` when it has none.
 *
 * @category constructors
 * @since 0.1.0
 */
export const schemaOf = (handlers: ReadonlyArray<GraphQLHandler>): GraphQLSchema | undefined => {
  if (handlers.length === 0) return undefined
  const types = new Types()
  types.names.add("Query")
  types.names.add("Mutation")
  types.names.add("JSON")
  const field = (h: GraphQLHandler): GraphQLFieldConfig<unknown, unknown> => {
    const out = types.of(h.output.ast, pascal(h.name), false)
    const decode = h.args === undefined ? undefined : Schema.decodeUnknownEffect(h.args as Schema.Codec<unknown, unknown>)
    const encode = Schema.encodeUnknownEffect(h.output as Schema.Codec<unknown, unknown>)
    return {
      // nullable at the top, so one failing field leaves the others' data (GraphQL nulls up to the nearest nullable field)
      type: out.type as GraphQLOutputType,
      ...(h.description === undefined ? {} : { description: h.description }),
      args: types.args(h.args, h.name),
      resolve: async (_source, args, context) => {
        const { run, failureOf } = context as Context
        const effect = Effect.gen(function*() {
          // graphql-js hands arguments as objects without a prototype; absent optional ones are missing
          const input = decode === undefined ? {} : yield* decode(stripNulls(h.args, { ...(args as object) })).pipe(
            Effect.mapError((e) => new FieldError({ status: 400, body: { error: "InvalidRequest", message: `Invalid arguments: ${e.message}` } }))
          )
          const value = yield* h.handle(input)
          return yield* Effect.orDie(encode(value))
        })
        const exit = await run(h, effect)
        if (Exit.isSuccess(exit)) return exit.value
        const failure = Cause.findErrorOption(exit.cause)
        if (Option.isSome(failure) && failure.value instanceof FieldError) throw failure.value
        throw new FieldError(failureOf(exit.cause))
      }
    }
  }
  const queries = handlers.filter((h) => h.kind === "query")
  const mutations = handlers.filter((h) => h.kind === "mutation")
  return new GraphQLSchema({
    // a GraphQL schema needs a Query type, even for a service with mutations only
    query: new GraphQLObjectType({
      name: "Query",
      fields: queries.length > 0
        ? Object.fromEntries(queries.map((h) => [h.name, field(h)]))
        : { _service: { type: new GraphQLNonNull(GraphQLString), resolve: () => "ok" } }
    }),
    ...(mutations.length === 0 ? {} : { mutation: new GraphQLObjectType({ name: "Mutation", fields: Object.fromEntries(mutations.map((h) => [h.name, field(h)])) }) })
  })
}

/** GraphQL sends `null` for an explicitly null argument; an optional key of ours wants it absent. */
const stripNulls = (_schema: Schema.Top | undefined, args: Record<string, unknown>): Record<string, unknown> => {
  for (const [k, v] of Object.entries(args)) if (v === null) delete args[k]
  return args
}

/**
 * The SDL of a schema.
 *
 * @since 0.1.0
 */
export const sdl = (schema: GraphQLSchema): string => printSchema(schema)

const Request = Schema.Struct({
  query: Schema.String,
  variables: Schema.optional(Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown))),
  operationName: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * Executes a GraphQL request body; resolves to the HTTP status and the response body.
 *
 * @category execution
 * @since 0.1.0
 */
export const execute = async (schema: GraphQLSchema, body: unknown, context: Context): Promise<{ readonly status: number; readonly body: unknown }> => {
  const decoded = Schema.decodeUnknownExit(Request)(body)
  if (Exit.isFailure(decoded)) {
    return { status: 400, body: { errors: [{ message: "Expected a JSON body { query, variables?, operationName? }", extensions: { error: "InvalidRequest", status: 400 } }] } }
  }
  const request = decoded.value
  const result = await graphql({
    schema,
    source: request.query,
    contextValue: context,
    variableValues: request.variables ?? undefined,
    operationName: request.operationName ?? undefined
  })
  let status = 200
  const errors = (result.errors ?? []).map((e: GraphQLError) => {
    const original = e.originalError
    const failure: FieldFailure | undefined = original instanceof FieldError ? original.failure : undefined
    // no original error: GraphQL itself refused the request (syntax, validation, variables)
    const errorStatus = failure?.status ?? (original === undefined ? 400 : 500)
    status = Math.max(status, errorStatus)
    return {
      message: failure === undefined && original !== undefined ? "Internal error" : e.message,
      ...(e.locations === undefined ? {} : { locations: e.locations }),
      ...(e.path === undefined ? {} : { path: e.path }),
      extensions: { ...(failure?.body ?? { error: original === undefined ? "InvalidRequest" : "InternalError" }), status: errorStatus }
    }
  })
  return { status, body: { ...("data" in result ? { data: result.data ?? null } : {}), ...(errors.length === 0 ? {} : { errors }) } }
}

/**
 * Where a service serves GraphQL: `/{service}/graphql` (minos: the lower-cased service name).
 *
 * @since 0.1.0
 */
export const pathOf = (service: string): `/${string}` => `/${service.toLowerCase()}/graphql`

/**
 * @since 0.1.0
 */
export type Routes = Pick<RoutesShape, "graphql">
