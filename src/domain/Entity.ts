/**
 * Entity-style aggregates, as minos users know them, on the decider contract.
 *
 * ```ts
 * const Exam = Entity.make("Exam", {
 *   title: Schema.String.check(Schema.isBetweenLength(1, 200)),
 *   roomUuid: Schema.optional(Schema.String),
 *   bookings: Entity.collection(Booking, "id")
 * })
 * repository.handle(id, Entity.update({ title: "Algebra II" }))
 * ```
 *
 * - `create(fields)` → `{Name}Created` with every field; a caller-chosen `uuid`/`version`/timestamps is
 *   refused (the store assigns them).
 * - `update(changes)` → `{Name}Updated` carrying only the fields that changed (no change → no event);
 *   `null` unsets an optional field. Collection fields diff item by item (create/update/delete).
 * - `delete()` → `{Name}Deleted`; a deleted entity cannot be updated or deleted again.
 * - An update also publishes one message per changed field, `{Name}Updated.{field}`, and per
 *   collection change, `{Name}Updated.{field}.{create|update|delete}`.
 *
 * Events carry encoded (JSON) values, so they are stored and published as they are.
 *
 * @since 0.1.0
 */
import { Result, Schema, SchemaIssue } from "effect"
import * as Aggregate from "./Aggregate.ts"
import { AlreadyDeleted, AlreadyExists, type EntityError, InvalidCommand, NotFound } from "./DomainError.ts"

const collectionKeys = new WeakMap<object, string>()

/**
 * A collection field: a list of items identified by `key`. Updates diff it item by item.
 *
 * @category constructors
 * @since 0.1.0
 */
export const collection = <S extends Schema.Codec<any, any>>(item: S, key: string & keyof S["Type"]): Schema.$Array<S> => {
  const schema = Schema.Array(item)
  collectionKeys.set(schema, key)
  return schema
}

/**
 * One field change in an `Updated` event. A plain field carries its new encoded `value` (absent when
 * the field was unset); a collection change carries the `action` and the encoded item.
 *
 * @category models
 * @since 0.1.0
 */
export type FieldDiff =
  | { readonly name: string; readonly value?: unknown }
  | { readonly name: string; readonly action: "create" | "update" | "delete"; readonly value: unknown }

/**
 * @category models
 * @since 0.1.0
 */
export type EntityState<D> =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Active"; readonly fields: D }
  | { readonly _tag: "Deleted"; readonly fields: D }

/**
 * @category models
 * @since 0.1.0
 */
export type EntityCommand =
  | { readonly _tag: "Create"; readonly fields: unknown }
  | { readonly _tag: "Update"; readonly changes: unknown }
  | { readonly _tag: "Delete" }

/**
 * @category models
 * @since 0.1.0
 */
export type EntityEvent<Name extends string> =
  | { readonly _tag: `${Name}Created`; readonly fields: Readonly<Record<string, unknown>> }
  | { readonly _tag: `${Name}Updated`; readonly diff: ReadonlyArray<FieldDiff> }
  | { readonly _tag: `${Name}Deleted` }

/**
 * An entity-style aggregate; `fields` is the Schema of its document.
 *
 * @category models
 * @since 0.1.0
 */
export interface Entity<Name extends string, D> extends Aggregate.Aggregate<EntityState<D>, EntityCommand, EntityEvent<Name>, EntityError> {
  readonly name: Name
  readonly fields: Schema.Codec<D, unknown>
  readonly topics: {
    readonly created: `${Name}Created`
    readonly updated: `${Name}Updated`
    readonly deleted: `${Name}Deleted`
  }
}

/** @since 0.1.0 */
export const create = (fields: unknown): EntityCommand => ({ _tag: "Create", fields })
/** @since 0.1.0 */
export const update = (changes: unknown): EntityCommand => ({ _tag: "Update", changes })
const deleteCommand: EntityCommand = { _tag: "Delete" }
export {
  /** @since 0.1.0 */
  deleteCommand as delete
}

/** Keys the store owns; a command carrying one is refused. */
export const reservedKeys: ReadonlyArray<string> = ["uuid", "id", "version", "createdAt", "updatedAt", "created_at", "updated_at"]

const equalJson = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as ReadonlyArray<unknown>
    return a.length === bb.length && a.every((x, i) => equalJson(x, bb[i]))
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  return ka.length === kb.length &&
    ka.every((k) => equalJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

const firstIssue = (error: Schema.SchemaError): { readonly field: string; readonly message: string } => {
  const issue = SchemaIssue.makeFormatterStandardSchemaV1()(error.issue).issues[0]
  const path = (issue?.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? String((p as { key: PropertyKey }).key) : String(p)))
  return { field: path.join("."), message: issue?.message ?? error.message }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Defines an entity-style aggregate from its field Schemas.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <const Name extends string, const Fields extends Schema.Struct.Fields>(
  name: Name,
  fields: Fields
): Entity<Name, Schema.Struct<Fields>["Type"]> => {
  type D = Schema.Struct<Fields>["Type"]
  const struct = Schema.Struct(fields) as unknown as Schema.Codec<D, Record<string, unknown>>
  const decodeDoc = Schema.decodeUnknownResult(struct, { onExcessProperty: "error", errors: "all" })
  const encodeDoc = Schema.encodeSync(struct)
  const optional = new Set(Object.keys(fields).filter((k) => Schema.isSchema(fields[k]) && (fields[k]!.ast.context?.isOptional ?? false)))
  const collections = new Map<string, string>()
  for (const [k, s] of Object.entries(fields)) {
    const key = collectionKeys.get(s as object)
    if (key !== undefined) collections.set(k, key)
  }
  const topics = { created: `${name}Created`, updated: `${name}Updated`, deleted: `${name}Deleted` } as const
  type Event = EntityEvent<Name>

  const invalid = (field: string, message: string) => Result.fail(new InvalidCommand({ aggregate: name, field, message }))

  const checkInput = (input: unknown, what: string): Result.Result<Record<string, unknown>, InvalidCommand> => {
    if (!isRecord(input)) return invalid("", `Expected the ${what} as an object`)
    for (const key of reservedKeys) {
      if (key in input) return invalid(key, `${key} is assigned by the store and cannot be set by a command`)
    }
    return Result.succeed(input)
  }

  const validate = (doc: Record<string, unknown>): Result.Result<{ readonly decoded: D; readonly encoded: Record<string, unknown> }, InvalidCommand> => {
    const decoded = decodeDoc(doc)
    if (Result.isFailure(decoded)) {
      const { field, message } = firstIssue(decoded.failure)
      return invalid(field, message)
    }
    return Result.succeed({ decoded: decoded.success, encoded: encodeDoc(decoded.success) })
  }

  const diffCollection = (field: string, key: string, before: ReadonlyArray<unknown>, after: ReadonlyArray<unknown>): Array<FieldDiff> => {
    const keyOf = (item: unknown) => JSON.stringify((item as Record<string, unknown>)[key])
    const old = new Map(before.map((i) => [keyOf(i), i]))
    const now = new Map(after.map((i) => [keyOf(i), i]))
    const out: Array<FieldDiff> = []
    for (const [k, item] of now) {
      const prev = old.get(k)
      if (prev === undefined) out.push({ name: field, action: "create", value: item })
      else if (!equalJson(prev, item)) out.push({ name: field, action: "update", value: item })
    }
    for (const [k, item] of old) if (!now.has(k)) out.push({ name: field, action: "delete", value: item })
    return out
  }

  const diff = (before: Record<string, unknown>, after: Record<string, unknown>): Array<FieldDiff> => {
    const out: Array<FieldDiff> = []
    for (const field of Object.keys(fields)) {
      const a = before[field]
      const b = after[field]
      if (equalJson(a, b)) continue
      const key = collections.get(field)
      if (key !== undefined) out.push(...diffCollection(field, key, (a ?? []) as ReadonlyArray<unknown>, (b ?? []) as ReadonlyArray<unknown>))
      else out.push(b === undefined ? { name: field } : { name: field, value: b })
    }
    return out
  }

  const applyDiff = (encoded: Record<string, unknown>, entries: ReadonlyArray<FieldDiff>): Record<string, unknown> => {
    const next: Record<string, unknown> = { ...encoded }
    for (const entry of entries) {
      if ("action" in entry) {
        const key = collections.get(entry.name)!
        const id = JSON.stringify((entry.value as Record<string, unknown>)[key])
        const list = ((next[entry.name] ?? []) as ReadonlyArray<Record<string, unknown>>).filter((i) => JSON.stringify(i[key]) !== id)
        next[entry.name] = entry.action === "delete" ? list : [...list, entry.value]
      } else if ("value" in entry) next[entry.name] = entry.value
      else delete next[entry.name]
    }
    return next
  }

  const decide = (command: EntityCommand, state: EntityState<D>): Result.Result<ReadonlyArray<Event>, EntityError> => {
    switch (command._tag) {
      case "Create": {
        if (state._tag !== "Absent") return Result.fail(new AlreadyExists({ aggregate: name, id: "" }))
        return Result.flatMap(checkInput(command.fields, "fields"), (input) =>
          Result.map(validate(input), ({ encoded }) => [{ _tag: topics.created, fields: encoded } as Event]))
      }
      case "Update": {
        if (state._tag === "Absent") return Result.fail(new NotFound({ aggregate: name, id: "" }))
        if (state._tag === "Deleted") return Result.fail(new AlreadyDeleted({ aggregate: name, id: "" }))
        return Result.flatMap(checkInput(command.changes, "changes"), (changes) => {
          for (const key of Object.keys(changes)) {
            if (!(key in fields)) return invalid(key, `Unknown field ${JSON.stringify(key)}`)
          }
          const current = encodeDoc(state.fields)
          const merged: Record<string, unknown> = { ...current }
          for (const [key, value] of Object.entries(changes)) {
            if (value === null && optional.has(key)) delete merged[key]
            else if (value !== undefined) merged[key] = value
          }
          return Result.map(validate(merged), ({ encoded }) => {
            const entries = diff(current, encoded)
            return entries.length === 0 ? [] : [{ _tag: topics.updated, diff: entries } as Event]
          })
        })
      }
      case "Delete": {
        if (state._tag === "Absent") return Result.fail(new NotFound({ aggregate: name, id: "" }))
        if (state._tag === "Deleted") return Result.fail(new AlreadyDeleted({ aggregate: name, id: "" }))
        return Result.succeed([{ _tag: topics.deleted } as Event])
      }
    }
  }

  const decodeSync = (encoded: unknown): D => {
    const r = decodeDoc(encoded)
    if (Result.isFailure(r)) throw new Error(`${name}: stored document does not match its schema: ${r.failure.message}`)
    return r.success
  }

  const evolve = (state: EntityState<D>, event: Event): EntityState<D> => {
    switch (event._tag) {
      case topics.created:
        return { _tag: "Active", fields: decodeSync((event as Extract<Event, { fields: unknown }>).fields) }
      case topics.updated: {
        if (state._tag === "Absent") return state
        const next = applyDiff(encodeDoc(state.fields), (event as Extract<Event, { diff: unknown }>).diff)
        return { _tag: state._tag, fields: decodeSync(next) }
      }
      case topics.deleted:
        return state._tag === "Absent" ? state : { _tag: "Deleted", fields: state.fields }
      default:
        return state
    }
  }

  const DiffEntry = Schema.Union([
    Schema.Struct({ name: Schema.String, action: Schema.Literals(["create", "update", "delete"]), value: Schema.Unknown }),
    Schema.Struct({ name: Schema.String, value: Schema.optionalKey(Schema.Unknown) })
  ])
  const events = Schema.Union([
    Schema.TaggedStruct(topics.created, { fields: Schema.Record(Schema.String, Schema.Unknown) }),
    Schema.TaggedStruct(topics.updated, { diff: Schema.Array(DiffEntry) }),
    Schema.TaggedStruct(topics.deleted, {})
  ]) as unknown as Schema.Codec<Event, unknown>

  const publications = (event: Event): ReadonlyArray<Aggregate.Publication> => {
    if (event._tag !== topics.updated) return [{ topic: event._tag, content: event }]
    const entries = (event as Extract<Event, { diff: unknown }>).diff
    return [
      { topic: event._tag, content: event },
      ...entries.map((entry) => ({
        topic: "action" in entry ? `${topics.updated}.${entry.name}.${entry.action}` : `${topics.updated}.${entry.name}`,
        content: { _tag: event._tag, diff: [entry] }
      }))
    ]
  }

  // what each topic carries, for specs and typed consumers (encoded values: the JSON side of each field)
  const fieldTopics = Object.entries(fields).flatMap(([field, schema]): ReadonlyArray<Aggregate.PublishedTopic> => {
    const key = collections.get(field)
    const value = Schema.isSchema(schema) ? (schema as Schema.Top) : Schema.Unknown
    if (key === undefined) {
      return [{
        topic: `${topics.updated}.${field}`,
        description: `${name}.${field} changed (no value: unset)`,
        data: Schema.TaggedStruct(topics.updated, { diff: Schema.Tuple([Schema.Struct({ name: Schema.Literal(field), value: Schema.optionalKey(value) })]) })
      }]
    }
    const item = (value.ast._tag === "Arrays" ? Schema.make(value.ast.rest[0]!) : Schema.Unknown)
    return (["create", "update", "delete"] as const).map((action) => ({
      topic: `${topics.updated}.${field}.${action}`,
      description: `An item of ${name}.${field} was ${action}d`,
      data: Schema.TaggedStruct(topics.updated, { diff: Schema.Tuple([Schema.Struct({ name: Schema.Literal(field), action: Schema.Literal(action), value: item })]) })
    }))
  })
  const published: ReadonlyArray<Aggregate.PublishedTopic> = [
    { topic: topics.created, description: `A ${name} was created`, data: Schema.TaggedStruct(topics.created, { fields: struct }) },
    { topic: topics.updated, description: `A ${name} changed: the changed fields`, data: Schema.TaggedStruct(topics.updated, { diff: Schema.Array(DiffEntry) }) },
    ...fieldTopics,
    { topic: topics.deleted, description: `A ${name} was deleted`, data: Schema.TaggedStruct(topics.deleted, {}) }
  ]

  return {
    name,
    fields: struct,
    topics,
    published,
    initialState: { _tag: "Absent" },
    evolve,
    decide,
    events,
    exists: (state) => state._tag !== "Absent",
    snapshot: {
      document: struct,
      encode: (state) => {
        if (state._tag === "Absent") throw new Error(`${name}: an absent entity has no snapshot`)
        return { document: encodeDoc(state.fields), deleted: state._tag === "Deleted" }
      },
      decode: (document, deleted) => ({ _tag: deleted ? "Deleted" : "Active", fields: decodeSync(document) })
    },
    publications
  }
}

/**
 * The fields of an existing entity, or `undefined`.
 *
 * @since 0.1.0
 */
export const fieldsOf = <D>(state: EntityState<D>): D | undefined => (state._tag === "Absent" ? undefined : state.fields)
