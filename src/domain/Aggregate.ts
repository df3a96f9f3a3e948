/**
 * The aggregate contract: a pure decider.
 *
 * - `initialState`: the state of an aggregate that has no events yet.
 * - `evolve(state, event)`: the state after one more event.
 * - `decide(command, state)`: the events a command produces, or a tagged domain error (a `Result`;
 *   it never throws and never touches IO or the clock).
 *
 * State and events are Effect Schemas so they can be stored (snapshots, event data) and sent (domain
 * events). Nothing here depends on a service; the repository (`eventstore/Repository.ts`) does the IO.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"

/**
 * Every event is a tagged record; its `_tag` is its type, stored with it and used as its topic.
 *
 * @category models
 * @since 0.1.0
 */
export interface EventLike {
  readonly _tag: string
}

/**
 * One message to publish for an event: the topic and the content (already JSON).
 *
 * @category models
 * @since 0.1.0
 */
export interface Publication {
  readonly topic: string
  readonly content: unknown
}

/**
 * A topic an aggregate publishes on, with the Schema of the `data` its messages carry (the encoded
 * event, or the part of it the topic is about). Spec generators describe the topic with it and
 * consumers decode with {@link domainEventOf}.
 *
 * @category models
 * @since 0.1.0
 */
export interface PublishedTopic {
  readonly topic: string
  readonly data: Schema.Top
  readonly description?: string | undefined
}

/**
 * How the state is stored as a snapshot and queried: a JSON document plus a deleted flag.
 *
 * @category models
 * @since 0.1.0
 */
export interface SnapshotCodec<State> {
  /** Schema of the stored document; query field paths are checked against its encoded side. */
  readonly document: Schema.Top
  readonly encode: (state: State) => { readonly document: unknown; readonly deleted: boolean }
  readonly decode: (document: unknown, deleted: boolean) => State
}

/**
 * A decider over commands and events.
 *
 * @category models
 * @since 0.1.0
 */
export interface Aggregate<State, Command, Event extends EventLike, Err> {
  /** The aggregate type's name, e.g. `Exam`; stored with every event and snapshot. */
  readonly name: string
  readonly initialState: State
  readonly evolve: (state: State, event: Event) => State
  readonly decide: (command: Command, state: State) => Result.Result<ReadonlyArray<Event>, Err>
  /** Codec of the events (a union tagged by `_tag`), used to store and read them. */
  readonly events: Schema.Codec<Event, unknown>
  readonly snapshot: SnapshotCodec<State>
  /** True when an aggregate with this state has been created (a stream exists). */
  readonly exists: (state: State) => boolean
  /** The messages an event publishes; by default one on topic `event._tag` with the encoded event. */
  readonly publications: (event: Event) => ReadonlyArray<Publication>
  /** Every topic `publications` can produce, with its data Schema (for specs and typed consumers). */
  readonly published?: ReadonlyArray<PublishedTopic> | undefined
}

/**
 * Type helpers.
 *
 * @since 0.1.0
 */
export declare namespace Aggregate {
  export type Any = Aggregate<any, any, any, any>
  export type State<A> = A extends Aggregate<infer S, any, any, any> ? S : never
  export type Command<A> = A extends Aggregate<any, infer C, any, any> ? C : never
  export type Event<A> = A extends Aggregate<any, any, infer E, any> ? E : never
  export type Error<A> = A extends Aggregate<any, any, any, infer E> ? E : never
}

/**
 * What `make` needs; the snapshot codec and publications have defaults.
 *
 * @category constructors
 * @since 0.1.0
 */
export interface Definition<State, Command, Event extends EventLike, Err> {
  readonly name: string
  readonly initialState: State
  readonly evolve: (state: State, event: Event) => State
  readonly decide: (command: Command, state: State) => Result.Result<ReadonlyArray<Event>, Err>
  readonly events: Schema.Codec<Event, unknown>
  /** Schema of the state; its encoded form is the snapshot document. */
  readonly state: Schema.Codec<State, unknown>
  readonly exists?: (state: State) => boolean
  readonly isDeleted?: (state: State) => boolean
  readonly publications?: (event: Event) => ReadonlyArray<Publication>
  /** The topics of custom `publications`; derived from the `events` union otherwise. */
  readonly published?: ReadonlyArray<PublishedTopic> | undefined
}

const aggregateName = /^[A-Z][A-Za-z0-9]*$/

/**
 * Builds an aggregate from a decider and the Schemas of its state and events.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <State, Command, Event extends EventLike, Err>(
  definition: Definition<State, Command, Event, Err>
): Aggregate<State, Command, Event, Err> => {
  if (!aggregateName.test(definition.name)) {
    throw new Error(`Aggregate name ${JSON.stringify(definition.name)} must be PascalCase letters and digits (it prefixes topic names)`)
  }
  const encodeState = Schema.encodeSync(definition.state)
  const decodeState = Schema.decodeUnknownSync(definition.state)
  const encodeEvent = Schema.encodeSync(definition.events)
  const isDeleted = definition.isDeleted ?? (() => false)
  const exists = definition.exists ?? ((s: State) => s !== definition.initialState)
  return {
    name: definition.name,
    initialState: definition.initialState,
    evolve: definition.evolve,
    decide: definition.decide,
    events: definition.events,
    exists,
    snapshot: {
      document: definition.state,
      encode: (state) => ({ document: encodeState(state), deleted: isDeleted(state) }),
      decode: (document) => decodeState(document)
    },
    publications: definition.publications ?? ((event) => [{ topic: event._tag, content: encodeEvent(event) }]),
    published: definition.published ?? (definition.publications === undefined ? topicsOfUnion(definition.events) : undefined)
  }
}

/** The members of a union of tagged events, each on the topic of its `_tag`. */
const topicsOfUnion = (events: Schema.Top): ReadonlyArray<PublishedTopic> => {
  const members = events.ast._tag === "Union" ? events.ast.types : [events.ast]
  const out: Array<PublishedTopic> = []
  for (const member of members) {
    if (member._tag !== "Objects") continue
    const tag = member.propertySignatures.find((p) => p.name === "_tag")?.type
    if (tag?._tag === "Literal" && typeof tag.literal === "string") out.push({ topic: tag.literal, data: Schema.make(member) })
  }
  return out
}

/**
 * The envelope of a published domain event with `data` typed by the Schema of one topic's data
 * (`PublishedTopic.data`); {@link DomainEvent} is the same with the aggregate's whole event union.
 * Spec generators describe each topic with it; {@link domainEventOf} picks a topic's.
 *
 * @category schemas
 * @since 0.1.0
 */
export const DomainEventEnvelope = <S extends Schema.Top>(data: S) =>
  Schema.Struct({
    /** The aggregate's id. */
    uuid: Schema.String,
    /** The aggregate type, e.g. `Exam`. */
    aggregate: Schema.String,
    /** The aggregate's version after this event. */
    version: Schema.Int,
    /** The event's `_tag`. */
    type: Schema.String,
    /** Entity events: `create`, `update` or `delete`. */
    action: Schema.optional(Schema.Literals(["create", "update", "delete"])),
    /** Epoch milliseconds of the commit. */
    createdAt: Schema.Number,
    data
  })

/**
 * The typed envelope of one topic an aggregate publishes; `undefined` when it publishes no such topic.
 *
 * @since 0.1.0
 */
export const domainEventOf = (aggregate: Pick<Aggregate.Any, "published">, topic: string) => {
  const found = aggregate.published?.find((p) => p.topic === topic)
  return found === undefined ? undefined : DomainEventEnvelope(found.data)
}

/**
 * Folds events over the initial state.
 *
 * @since 0.1.0
 */
export const replay = <State, Event extends EventLike>(
  aggregate: { readonly initialState: State; readonly evolve: (state: State, event: Event) => State },
  events: Iterable<Event>,
  from: State = aggregate.initialState
): State => {
  let state = from
  for (const event of events) state = aggregate.evolve(state, event)
  return state
}

/**
 * Runs a command against a history: the events it produces and the state after them.
 *
 * @since 0.1.0
 */
export const run = <State, Command, Event extends EventLike, Err>(
  aggregate: Aggregate<State, Command, Event, Err>,
  state: State,
  command: Command
): Result.Result<{ readonly events: ReadonlyArray<Event>; readonly state: State }, Err> =>
  Result.map(aggregate.decide(command, state), (events) => ({ events, state: replay(aggregate, events, state) }))

/**
 * A published domain event as its consumers receive it: the content of every message the repository
 * publishes for an event (`{Name}Created`, `{Name}Updated.{field}`, the aggregate's stream topic…),
 * with `data` the aggregate's event.
 *
 * @category models
 * @since 0.1.0
 */
export interface DomainEvent<Event> {
  /** The aggregate id. */
  readonly uuid: string
  readonly aggregate: string
  /** The aggregate's version after this event (1 for the first). */
  readonly version: number
  /** The event type (`_tag` of `data`). */
  readonly type: string
  /** `create` / `update` / `delete` for entity events. */
  readonly action?: "create" | "update" | "delete" | undefined
  /** Epoch ms at which the event was stored. */
  readonly createdAt: number
  readonly data: Event
}

/**
 * The Schema of a published domain event of `aggregate`, with `data` decoded by the aggregate's
 * event Schema: `Router.event("ExamCreated", { payload: Aggregate.DomainEvent(Exam) }, …)`.
 *
 * @category schemas
 * @since 0.1.0
 */
export const DomainEvent = <A extends { readonly events: Schema.Codec<any, unknown> }>(
  aggregate: A
): Schema.Codec<DomainEvent<Schema.Schema.Type<A["events"]>>, unknown> =>
  Schema.Struct({
    uuid: Schema.String,
    aggregate: Schema.String,
    version: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
    type: Schema.String,
    action: Schema.optional(Schema.Literals(["create", "update", "delete"])),
    createdAt: Schema.Number,
    data: aggregate.events
  }) as unknown as Schema.Codec<DomainEvent<Schema.Schema.Type<A["events"]>>, unknown>
