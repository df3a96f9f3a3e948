/**
 * Messaging end to end on one backend pair: request/reply, errors as replies, dead letters and their
 * replay, duplicate deliveries, a consumer killed mid-handler, a relay crash between publish and delete.
 */
import { assert, it as baseIt } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Layer, Ref, Schedule, Schema } from "effect"
import { Broker } from "../../src/broker/Broker.ts"
import * as Message from "../../src/broker/Message.ts"
import { RequestClient } from "../../src/messaging/RequestClient.ts"
import { MinosConfig } from "../../src/config/MinosConfig.ts"
import { EventStore } from "../../src/eventstore/EventStore.ts"
import * as Repository from "../../src/command/Repository.ts"
import * as DeadLetters from "../../src/messaging/DeadLetters.ts"
import { Outbox } from "../../src/queue/Outbox.ts"
import * as OutboxRelay from "../../src/messaging/OutboxRelay.ts"
import * as Router from "../../src/router/Router.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import { Counter } from "../fixtures/Domain.ts"

class Ledger extends Context.Service<Ledger, Repository.Repository<typeof Counter>>()("test/Ledger") {}

/** Test controls: a poison switch and a gate a slow handler waits on. */
class Controls extends Context.Service<Controls, {
  readonly broken: Ref.Ref<boolean>
  readonly entered: Ref.Ref<number>
  readonly gate: Deferred.Deferred<void>
  readonly opened: Ref.Ref<ReadonlyMap<string, number>>
}>()("test/Controls") {}

const Id = Schema.Struct({ id: Schema.String })

/** The suite's topics get a per-run suffix: a real Kafka keeps the topics of earlier runs. */
const makeHandlers = (t: (name: string) => string) => [
  Router.command(t("OpenCounter"), { payload: Schema.Struct({ start: Schema.Int }), success: Id }, ({ start }) =>
    Effect.flatMap(Ledger, (l) => l.create({ _tag: "Open", start })).pipe(Effect.map((h) => ({ id: h.id })))),
  Router.command(t("Bump"), { payload: Schema.Struct({ id: Schema.String, by: Schema.Int }), success: Schema.Struct({ version: Schema.Int }) }, ({ by, id }) =>
    Effect.flatMap(Ledger, (l) => l.handle(id, { _tag: "Change", by })).pipe(Effect.map((h) => ({ version: h.version })))),
  Router.command(t("Crash"), { payload: Schema.Unknown }, () => Effect.die(new Error("handler bug"))),
  Router.query(t("Echo"), { payload: Schema.Struct({ n: Schema.Int }) }, ({ n }) => Effect.succeed({ n })),
  Router.event(t("Bumped"), { payload: Schema.Struct({ id: Schema.String, poison: Schema.Boolean }) }, ({ id, poison }) =>
    Effect.gen(function*() {
      const controls = yield* Controls
      if (poison && (yield* Ref.get(controls.broken))) return yield* Effect.fail({ _tag: "Poisoned", message: "cannot handle this one yet" })
      yield* Effect.flatMap(Ledger, (l) => l.handle(id, { _tag: "Change", by: 1 }))
    })),
  Router.event(t("Slow"), { payload: Id }, ({ id }) =>
    Effect.gen(function*() {
      const controls = yield* Controls
      yield* Ref.update(controls.entered, (n) => n + 1)
      yield* Deferred.await(controls.gate)
      yield* Effect.flatMap(Ledger, (l) => l.handle(id, { _tag: "Change", by: 1 }))
    })),
  Router.event("CounterOpened", { payload: Schema.Struct({ uuid: Schema.String }) }, ({ uuid }) =>
    Effect.flatMap(Controls, (c) => Ref.update(c.opened, (m) => new Map([...m, [uuid, (m.get(uuid) ?? 0) + 1]]))))
] as const

const serviceOf = (t: (name: string) => string, overrides: { relay?: boolean } = {}) =>
  Layer.unwrap(Effect.gen(function*() {
    const config = yield* MinosConfig
    const adjusted = Layer.succeed(MinosConfig, MinosConfig.of({ ...config, components: { ...config.components, relay: overrides.relay ?? true } }))
    return Microservice.layerWith({ handlers: makeHandlers(t), services: Repository.layer(Ledger, Counter) }).pipe(Layer.provide(adjusted))
  }))

const run = <ROut, A, E, R, R2>(layer: Layer.Layer<ROut, unknown, R>, body: Effect.Effect<A, E, R2>) =>
  Effect.scoped(Effect.andThen(Layer.build(layer), body))

const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, timeout: Duration.Input = "20 seconds") =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(Duration.fromInputUnsafe(timeout))
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

const publish = (topic: string, key: string, content: unknown, identifier: string = crypto.randomUUID()) =>
  Effect.flatMap(Broker, (b) =>
    b.publish([{ topic, key, value: Message.encode(Message.make({ topic, identifier, content })), headers: { "message-id": identifier } }]))

const value = (id: string) => Effect.flatMap(Ledger, (l) => l.get(id)).pipe(Effect.map((c) => c.state.value))

export const suite = (name: string, infrastructure: Layer.Layer<Microservice.Infrastructure, unknown>, suffix = "") => {
  const t = (topic: string) => `${topic}${suffix}`
  const service = (overrides: { relay?: boolean } = {}) => serviceOf(t, overrides)
  return baseIt.layer(
    Layer.merge(
      Layer.effect(Controls, Effect.gen(function*() {
        return { broken: yield* Ref.make(true), entered: yield* Ref.make(0), gate: yield* Deferred.make<void>(), opened: yield* Ref.make<ReadonlyMap<string, number>>(new Map()) }
      })),
      Repository.layer(Ledger, Counter)
    ).pipe(Layer.provideMerge(infrastructure)),
    { timeout: "120 seconds", excludeTestServices: true }
  )(`Messaging (${name})`, (it) => {
    it.effect("commands reply with their result; domain errors and bad payloads reply 400", () =>
      run(service(), Effect.gen(function*() {
        const client = yield* RequestClient
        const opened = yield* client.send(t("OpenCounter"), { start: 1 })
        assert.strictEqual(opened.status, 200)
        const { id } = opened.content as { id: string }
        const bumped = yield* client.send(t("Bump"), { id, by: 2 })
        assert.deepStrictEqual([bumped.status, bumped.content], [200, { version: 2 }])
        const refused = yield* client.send(t("Bump"), { id, by: -10 })
        assert.strictEqual(refused.status, 400)
        assert.strictEqual((refused.content as { _tag: string })._tag, "WouldGoNegative")
        assert.strictEqual((refused.content as { by: number }).by, -10)
        const invalid = yield* client.send(t("Bump"), { id, by: "two" })
        assert.strictEqual(invalid.status, 400)
        assert.strictEqual((invalid.content as { _tag: string })._tag, "InvalidPayload")
        assert.include((invalid.content as { message: string }).message, "by")
        assert.strictEqual(yield* value(id), 3)
      })))

    it.effect("concurrent requests each get their own reply; no handler → timeout", () =>
      run(service(), Effect.gen(function*() {
        const client = yield* RequestClient
        const replies = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (n) => client.send(t("Echo"), { n }), { concurrency: 20 })
        assert.deepStrictEqual(replies.map((r) => (r.content as { n: number }).n), Array.from({ length: 20 }, (_, i) => i))
        const e = yield* Effect.flip(client.send(t("NobodyListens"), {}, { timeout: "500 millis" }))
        assert.strictEqual(e.reason, "Timeout")
      })))

    it.effect("a handler that dies is retried, dead-lettered, and the caller gets a 500", () =>
      run(service(), Effect.gen(function*() {
        const client = yield* RequestClient
        const reply = yield* client.send(t("Crash"), {})
        assert.strictEqual(reply.status, 500)
        assert.notInclude(JSON.stringify(reply.content), "handler bug")
        const letters = (yield* DeadLetters.list({ topic: t("Crash") }))
        assert.strictEqual(letters.length, 1)
        assert.strictEqual(letters[0]!.attempts, 3)
        assert.include(letters[0]!.error, "handler bug")
      })))

    it.effect("a redelivered message has no second effect", () =>
      run(service(), Effect.gen(function*() {
        const client = yield* RequestClient
        const { id } = (yield* client.send(t("OpenCounter"), { start: 0 })).content as { id: string }
        const identifier = crypto.randomUUID()
        yield* publish(t("Bumped"), id, { id, poison: false }, identifier)
        yield* publish(t("Bumped"), id, { id, poison: false }, identifier)
        yield* publish(t("Bumped"), id, { id, poison: false })
        yield* eventually("two bumps", Effect.map(value(id), (v) => v >= 2))
        yield* Effect.sleep("300 millis")
        assert.strictEqual(yield* value(id), 2)
      })))

    it.effect("a burst on one key is handled in order, each message once", () =>
      run(service(), Effect.gen(function*() {
        const client = yield* RequestClient
        const { id } = (yield* client.send(t("OpenCounter"), { start: 0 })).content as { id: string }
        const broker = yield* Broker
        const identifiers = Array.from({ length: 60 }, () => crypto.randomUUID())
        // one publish: the consumer sees them as one batch, duplicates included
        yield* broker.publish([...identifiers, identifiers[0]!, identifiers[1]!].map((identifier) => ({
          topic: t("Bumped"),
          key: id,
          value: Message.encode(Message.make({ topic: t("Bumped"), identifier, content: { id, poison: false } })),
          headers: { "message-id": identifier }
        })))
        yield* eventually("sixty bumps", Effect.map(value(id), (v) => v >= 60))
        yield* Effect.sleep("300 millis")
        assert.strictEqual(yield* value(id), 60)
        const versions = (yield* Effect.flatMap(EventStore, (s) => s.readStream(id))).map((e) => e.version)
        assert.deepStrictEqual(versions, Array.from({ length: 61 }, (_, i) => i + 1))
      })))

    it.effect("a poison message is dead-lettered after its attempts, the partition moves on, replay works after the fix", () =>
      run(service(), Effect.gen(function*() {
        const client = yield* RequestClient
        const controls = yield* Controls
        const { id } = (yield* client.send(t("OpenCounter"), { start: 0 })).content as { id: string }
        yield* publish(t("Bumped"), id, { id, poison: true })
        yield* publish(t("Bumped"), id, { id, poison: false })
        yield* eventually("the message after the poison", Effect.map(value(id), (v) => v === 1))
        const letters = yield* DeadLetters.list({ topic: t("Bumped") })
        const mine = letters.filter((l) => l.value.includes(id))
        assert.strictEqual(mine.length, 1)
        assert.strictEqual(mine[0]!.attempts, 3)
        assert.include(mine[0]!.error, "Poisoned")
        yield* Ref.set(controls.broken, false)
        yield* DeadLetters.replay(mine[0]!.id)
        yield* eventually("the replayed message", Effect.map(value(id), (v) => v === 2))
        assert.strictEqual((yield* DeadLetters.list({ topic: t("Bumped") })).filter((l) => l.value.includes(id)).length, 0)
        const bad = yield* Effect.flip(DeadLetters.replay(mine[0]!.id))
        assert.strictEqual(bad.reason, "NotFound")
      })))

    it.effect("an undecodable message is dead-lettered, never crashes the consumer", () =>
      run(service(), Effect.gen(function*() {
        const broker = yield* Broker
        const client = yield* RequestClient
        const marker = crypto.randomUUID()
        yield* broker.publish([{ topic: t("Bumped"), key: "x", value: `{"not":"an envelope","marker":"${marker}"}`, headers: {} }])
        yield* eventually("the dead letter", Effect.map(DeadLetters.list({ topic: t("Bumped") }), (ls) => ls.some((l) => l.value.includes(marker))))
        assert.strictEqual((yield* client.send(t("Echo"), { n: 7 })).status, 200)
      })))

    it.effect("poison no store can hold (NUL bytes, NUL in the key and headers) is dead-lettered escaped; the partition moves on", () =>
      run(service(), Effect.gen(function*() {
        const broker = yield* Broker
        const client = yield* RequestClient
        const marker = crypto.randomUUID()
        yield* broker.publish([{ topic: t("Bumped"), key: "k\u0000", value: `{"m":"${marker}\u0000\u0000"}`, headers: { "x-h": "v\u0000" } }])
        const letters = yield* DeadLetters.list({ topic: t("Bumped") }).pipe(
          Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (ls) => ls.some((l) => l.value.includes(marker)) }),
          Effect.timeout("20 seconds")
        )
        const letter = letters.find((l) => l.value.includes(marker))!
        assert.include(letter.value, "\\u0000")
        assert.strictEqual(letter.key, "k\\u0000")
        assert.strictEqual((yield* client.send(t("Echo"), { n: 8 })).status, 200)
      })))

    it.effect("a payload string with NUL or a lone surrogate is answered 400, on every backend; an unusable reply topic is a bad envelope", () =>
      run(service(), Effect.gen(function*() {
        const client = yield* RequestClient
        for (const bad of ["a\u0000", "\ud800"]) {
          const reply = yield* client.send(t("OpenCounter"), { start: 1, [bad]: 1 })
          assert.strictEqual(reply.status, 400)
          assert.strictEqual((reply.content as { _tag: string })._tag, "InvalidPayload")
          assert.include((reply.content as { message: string }).message, "NUL")
        }
        const broker = yield* Broker
        const identifier = crypto.randomUUID()
        const envelope = Message.make({ topic: t("OpenCounter"), identifier, content: { start: 1 }, replyTopic: "no such topic!" })
        yield* broker.publish([{ topic: t("OpenCounter"), key: "r", value: Message.encode(envelope), headers: {} }])
        yield* DeadLetters.list({ topic: t("OpenCounter") }).pipe(
          Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (ls) => ls.some((l) => l.value.includes(identifier)) }),
          Effect.timeout("20 seconds")
        )
        assert.strictEqual((yield* client.send(t("Echo"), { n: 9 })).status, 200)
      })))

    it.effect("a consumer killed mid-handler: the next one handles the message, once", () =>
      Effect.gen(function*() {
        const controls = yield* Controls
        const client = yield* RequestClient
        const id = yield* run(service(), Effect.gen(function*() {
          const { id } = (yield* client.send(t("OpenCounter"), { start: 0 })).content as { id: string }
          yield* publish(t("Slow"), id, { id })
          yield* eventually("the handler started", Effect.map(Ref.get(controls.entered), (n) => n >= 1))
          return id
        }))
        // the first instance is gone, its handler interrupted before anything committed
        assert.strictEqual(yield* value(id), 0)
        yield* Deferred.succeed(controls.gate, undefined)
        yield* run(service(), eventually("the second instance handled it", Effect.map(value(id), (v) => v === 1)))
        yield* Effect.sleep("200 millis")
        assert.strictEqual(yield* value(id), 1)
      }))

    it.effect("a relay that crashes between publish and delete publishes again; the handler runs once", () =>
      run(service({ relay: false }), Effect.gen(function*() {
        const controls = yield* Controls
        const ledger = yield* Ledger
        const outbox = yield* Outbox
        const broker = yield* Broker
        yield* OutboxRelay.drain(1000)
        const { id } = yield* ledger.create({ _tag: "Open", start: 0 })
        const seen = Effect.map(Ref.get(controls.opened), (m) => m.get(id) ?? 0)
        const crashed = yield* outbox.process(100, (rows) => Effect.andThen(broker.publish(rows), Effect.die(new Error("crash after publish")))).pipe(Effect.exit)
        assert.strictEqual(crashed._tag, "Failure")
        assert.strictEqual(yield* outbox.pending, 1)
        assert.strictEqual(yield* OutboxRelay.drain(100), 1)
        yield* eventually("the event handled", Effect.map(seen, (n) => n === 1))
        yield* Effect.sleep("300 millis")
        assert.strictEqual(yield* seen, 1)
      })))
  })
}
