/**
 * The crash-anywhere kit finds what it must: a create with a fresh id, retried by its client after a
 * crash between commit and answer, makes two aggregates (the kit reports that crash point); the
 * same create with an id the client chose is retry-safe at every point. It also counts the
 * crossings of a clean run, and refuses a scenario that crosses no boundary.
 */
import { assert, it } from "@effect/vitest"
import { Context, Effect, Layer, Stream } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Repository from "../../src/command/Repository.ts"
import * as Condition from "../../src/query/Condition.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import * as CrashTest from "../../src/testing/CrashTest.ts"
import { Counter } from "../fixtures/Domain.ts"

class Counters extends Context.Service<Counters, Repository.Repository<typeof Counter>>()("test/CrashTest/Counters") {}

const infrastructure = () =>
  Layer.unwrap(Effect.sync(() =>
    Layer.mergeAll(Lmdb.layer({ path: join(mkdtempSync(join(tmpdir(), "crash-kit-")), "store"), mapSize: 32 * 1024 * 1024 }), MemoryBroker.layer())
  ))

const service = Repository.layer(Counters, Counter)

const exactlyOne = Effect.gen(function*() {
  const counters = yield* Counters
  const all = yield* Stream.runCollect(counters.find({ condition: Condition.TRUE }))
  assert.strictEqual(all.length, 1, `${all.length} counters`)
})

it.live("a create with a fresh id is not retry-safe: the crash after its commit is reported", () =>
  Effect.gen(function*() {
    const report = yield* CrashTest.run({
      infrastructure,
      service,
      when: Effect.flatMap(Counters, (c) => c.create({ _tag: "Open", start: 1 })),
      then: exactlyOne,
      boundaries: ["beforeCommit", "afterCommit"],
      settle: "1 second",
      quiet: "10 millis"
    })
    assert.strictEqual(report.crossings.beforeCommit, 1)
    assert.strictEqual(report.crossings.afterCommit, 1)
    const byPoint = Object.fromEntries(report.outcomes.map((o) => [`${o.boundary}#${o.crossing}`, o.passed]))
    assert.deepStrictEqual(byPoint, { "beforeCommit#1": true, "afterCommit#1": false })
    assert.throws(() => CrashTest.assertAllPassed(report), /afterCommit #1/)
  }), 60_000)

it.live("a create with an id the client chose is retry-safe at every boundary", () =>
  Effect.gen(function*() {
    const id = crypto.randomUUID()
    const report = yield* CrashTest.run({
      infrastructure,
      service,
      // the retry after a lost answer finds the counter there: a conflict the client may ignore
      when: Effect.flatMap(Counters, (c) => c.handle(id, { _tag: "Open", start: 1 }, { expectedVersion: 0 })),
      then: exactlyOne,
      settle: "2 seconds",
      quiet: "10 millis"
    })
    CrashTest.assertAllPassed(report)
    assert.isAtLeast(report.outcomes.length, 2)
  }), 60_000)

it.live("a scenario that crosses no boundary is refused", () =>
  Effect.gen(function*() {
    const report = yield* CrashTest.run({ infrastructure, service, when: Effect.void, then: Effect.void, quiet: "10 millis" })
    assert.throws(() => CrashTest.assertAllPassed(report), /crossed no persistence boundary/)
  }), 60_000)
