/** The follower, inline mode, rebuild and poison handling on one storage backend. */
import { assert, it as baseIt } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Ref, Schedule, Stream } from "effect"
import { TRUE } from "../../src/query/Condition.ts"
import { EventStore } from "../../src/eventstore/EventStore.ts"
import * as Entity from "../../src/domain/Entity.ts"
import * as Repository from "../../src/command/Repository.ts"
import * as Projection from "../../src/projection/Projection.ts"
import * as ProjectionRunner from "../../src/projection/ProjectionRunner.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { Exam, examFields } from "../fixtures/Domain.ts"
import { type ExamView, examViews } from "./Fixtures.ts"

/** The view a fresh replay of the aggregate gives (none when deleted). */
const expected = (loaded: Repository.Loaded<typeof Exam.initialState>): Option.Option<ExamView> => {
  const fields = Entity.fieldsOf(loaded.state)
  if (fields === undefined || loaded.deleted) return Option.none()
  return Option.some({
    uuid: loaded.id,
    version: loaded.version,
    title: fields.title,
    subject: fields.subject,
    durationMinutes: fields.durationMinutes,
    status: fields.status,
    ...(fields.roomUuid === undefined ? {} : { roomUuid: fields.roomUuid }),
    ...(fields.seats === undefined ? {} : { seats: fields.seats })
  })
}

/**
 * Steps the follower until every aggregate of `ids` is applied at its stream version (a round that
 * reads nothing is not proof: the gap-safe read stops below any transaction still in flight).
 */
const catchUp = (p: Projection.Projection.Any, ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const events = yield* EventStore
    const behind = Effect.gen(function*() {
      for (const id of ids) if ((yield* p.version(id)) < (yield* events.streamVersion(id))) return true
      return false
    })
    yield* ProjectionRunner.step(p, { batchSize: 50 }).pipe(
      Effect.andThen(behind),
      Effect.repeat({ schedule: Schedule.spaced("5 millis"), while: (b) => b }),
      Effect.timeout("30 seconds")
    )
  })

export const suite = (name: string, layer: Layer.Layer<Storage.Services, unknown>) =>
  baseIt.layer(layer, { timeout: "120 seconds", excludeTestServices: true })(`ProjectionRunner (${name})`, (it) => {
    it.effect("the follower applies the log: every document equals its aggregate, deleted ones are gone", () =>
      Effect.gen(function*() {
        const repo = yield* Repository.make(Exam, { publish: false })
        const views = examViews(`follow.${name}.${crypto.randomUUID().slice(0, 6)}`)
        const ids: Array<string> = []
        for (let i = 0; i < 12; i++) {
          const { id } = yield* repo.create(Entity.create({ ...examFields, title: `E${i}` }))
          ids.push(id)
          yield* repo.handle(id, Entity.update({ seats: i + 1 }))
          if (i % 3 === 0) yield* repo.handle(id, Entity.delete)
        }
        yield* catchUp(views, ids)
        for (const id of ids) assert.deepStrictEqual(yield* views.get(id), expected(yield* repo.load(id)))
        // more writes, caught up from the checkpoint
        yield* repo.handle(ids[1]!, Entity.update({ title: "Later" }))
        yield* catchUp(views, ids)
        assert.strictEqual(Option.getOrThrow(yield* views.get(ids[1]!)).title, "Later")
        const { state } = yield* Projection.stateOf(views.name)
        assert.isAtLeast(state.applied, 29)
      }))

    it.effect("inline: the command's transaction updates the view (read-your-writes), the follower finds it applied", () =>
      Effect.gen(function*() {
        const views = examViews(`inline.${name}.${crypto.randomUUID().slice(0, 6)}`, { mode: "inline" })
        const repo = yield* Repository.make(Exam, { publish: false }).pipe(Effect.provide(ProjectionRunner.layerInline([views])))
        const { id } = yield* repo.create(Entity.create(examFields))
        const { version } = yield* repo.handle(id, Entity.update({ title: "Inline" }))
        assert.deepStrictEqual(Option.map(yield* views.get(id), (v) => [v.title, v.version]), Option.some(["Inline", version]))
        assert.strictEqual(yield* views.version(id), 2)
        yield* catchUp(views, [id])
        assert.deepStrictEqual(yield* views.get(id), expected(yield* repo.load(id)))
      }))

    it.effect("rebuild while writes continue: the swapped-in generation equals a fresh replay, reads never fail", () =>
      Effect.gen(function*() {
        const repo = yield* Repository.make(Exam, { publish: false })
        const views = examViews(`rebuild.${name}.${crypto.randomUUID().slice(0, 6)}`)
        const ids: Array<string> = []
        for (let i = 0; i < 40; i++) ids.push((yield* repo.create(Entity.create({ ...examFields, title: `R${i}` }))).id)
        const registry = ProjectionRunner.layer([views], { batchSize: 20, pollIntervalMs: 10, dropAfterMs: 200 })
        return yield* Effect.scoped(Effect.gen(function*() {
          yield* Layer.build(registry)
          const readFailures = yield* Ref.make(0)
          const reads = yield* Ref.make(0)
          // readers: every read must succeed; the first 40 exams were never deleted, so they are always there once seen
          const reader = yield* Effect.gen(function*() {
            const id = ids[Math.floor(Math.random() * ids.length)]!
            yield* views.get(id)
            yield* views.count()
            yield* Ref.update(reads, (n) => n + 1)
          }).pipe(
            Effect.catchCause(() => Ref.update(readFailures, (n) => n + 1)),
            Effect.repeat(Schedule.spaced("2 millis")),
            Effect.forkChild
          )
          yield* views.waitFor(ids[39]!, 1, 20_000)
          const request = yield* ProjectionRunner.requestRebuild(views.name)
          assert.strictEqual(request.generation, 2)
          // writes during the rebuild
          for (let i = 0; i < 60; i++) {
            const id = ids[i % ids.length]!
            yield* repo.handle(id, Entity.update({ seats: i + 1 }))
            if (i % 20 === 0) ids.push((yield* repo.create(Entity.create({ ...examFields, title: `N${i}` }))).id)
          }
          const swapped = yield* Projection.stateOf(views.name).pipe(
            Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: ({ state }) => state.generation === 2 && state.rebuild === undefined }),
            Effect.timeout("60 seconds")
          )
          assert.strictEqual(swapped.state.lastRebuild?.generation, 2)
          assert.strictEqual(yield* views.activeCollection, `${views.collection}.g2`)
          // caught up with the last write
          const last = yield* repo.handle(ids[0]!, Entity.update({ title: "Last" }))
          assert.isTrue(yield* views.waitFor(ids[0]!, last.version, 20_000))
          yield* Fiber.interrupt(reader)
          assert.strictEqual(yield* Ref.get(readFailures), 0)
          assert.isAbove(yield* Ref.get(reads), 0)
          // equal to a fresh replay of the log into a projection of its own
          const fresh = examViews(`fresh.${views.name}`)
          yield* catchUp(fresh, ids)
          for (const id of ids) {
            const want = expected(yield* repo.load(id))
            assert.deepStrictEqual(yield* views.get(id), want)
            assert.deepStrictEqual(yield* fresh.get(id), want)
          }
          const all = yield* views.find({ condition: TRUE }).pipe(Stream.runCollect)
          const freshAll = yield* fresh.find({ condition: TRUE }).pipe(Stream.runCollect)
          for (const v of all) assert.deepStrictEqual(Option.some(v), yield* fresh.get(v.uuid), `live ${v.uuid}`)
          assert.strictEqual(all.length, freshAll.length)
          // the old generation is deleted after its grace
          const dropped = yield* Projection.stateOf(views.name).pipe(
            Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: ({ state }) => (state.dropping ?? []).length === 0 }),
            Effect.timeout("30 seconds")
          )
          assert.strictEqual(dropped.state.generation, 2)
          const statuses = yield* ProjectionRunner.statuses
          const mine = statuses.find((s) => s.name === views.name)!
          assert.strictEqual(mine.documents, all.length)
          assert.strictEqual(mine.parked, 0)
        }))
      }))

    it.effect("poison: a failing event is parked, later events of that aggregate wait, others flow; retry releases them in order", () =>
      Effect.gen(function*() {
        const repo = yield* Repository.make(Exam, { publish: false })
        const broken = yield* Ref.make(true)
        const name2 = `poison.${name}.${crypto.randomUUID().slice(0, 6)}`
        const base = examViews(name2)
        // the same projection whose update handler fails on a "poison" title while `broken`
        const views = Projection.make<typeof Exam, ExamView, Error>({
          name: name2,
          aggregate: Exam,
          collection: base.collection,
          schema: base.schema,
          on: {
            ExamCreated: (_, event) => Option.some(viewOfCreated(event)),
            ExamUpdated: (current, event) =>
              Effect.gen(function*() {
                const change = event.data.diff.find((d) => d.name === "title")
                if (change !== undefined && "value" in change && change.value === "poison" && (yield* Ref.get(broken))) {
                  return yield* Effect.fail(new Error("cannot handle poison"))
                }
                return Option.map(current, (v): ExamView => ({ ...v, version: event.version, ...Object.fromEntries(event.data.diff.filter((d) => "value" in d).map((d) => [d.name, d.value])) }))
              }),
            ExamDeleted: () => Option.none()
          }
        })
        const k = (yield* repo.create(Entity.create(examFields))).id
        const other = (yield* repo.create(Entity.create(examFields))).id
        yield* repo.handle(k, Entity.update({ title: "poison" }))
        yield* repo.handle(k, Entity.update({ seats: 7 }))
        yield* repo.handle(other, Entity.update({ title: "fine" }))
        yield* ProjectionRunner.step(views, { batchSize: 50, attempts: 2 }).pipe(
          Effect.andThen(views.version(other)),
          Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (v) => v === 2 }),
          Effect.timeout("30 seconds")
        )
        // other keys progressed; K stopped at version 1 with v2 (poison) and v3 parked
        assert.strictEqual(Option.getOrThrow(yield* views.get(other)).title, "fine")
        assert.strictEqual(yield* views.version(k), 1)
        const status = (yield* ProjectionRunner.statuses).find((s) => s.name === name2)
        assert.strictEqual(status, undefined) // not registered: statuses lists registered projections only
        const { state } = yield* Projection.stateOf(name2)
        const parked = yield* Effect.flatMap(Effect.service(ProjectionStoreTag), (s) => s.parked(Projection.marksOf(name2, state.generation)))
        assert.deepStrictEqual(parked.map((p) => [p.aggregateId, p.version, typeof (p.event as { error?: unknown }).error]), [[k, 2, "string"], [k, 3, "undefined"]])
        // fixed: retry applies v2, then v3 that waited behind it
        yield* Ref.set(broken, false)
        const outcome = yield* ProjectionRunner.retryParked(views, k)
        assert.deepStrictEqual(outcome, Option.some({ _tag: "Applied", version: 3, drained: 1 }))
        const view = Option.getOrThrow(yield* views.get(k))
        assert.deepStrictEqual([view.title, view.seats, view.version], ["poison", 7, 3])
      }))
  })

import { ProjectionStore as ProjectionStoreTag } from "../../src/readmodel/ProjectionStore.ts"
const viewOfCreated = (event: { readonly uuid: string; readonly version: number; readonly data: { readonly fields: Readonly<Record<string, unknown>> } }): ExamView =>
  ({ ...(event.data.fields as unknown as ExamView), uuid: event.uuid, version: event.version })
