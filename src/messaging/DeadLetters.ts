/**
 * Dead letters: list them, and replay one or all once the cause is fixed. A replay puts the original
 * record back on its topic through the outbox and removes the dead letter, in one storage
 * transaction; the inbox never recorded the failed message, so it is handled again.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { UnitOfWork } from "../storage/UnitOfWork.ts"
import { type DeadLetter, Inbox } from "../queue/Inbox.ts"
import { Outbox } from "../queue/Outbox.ts"

/**
 * @since 0.1.0
 */
export const list = (options?: { readonly topic?: string | undefined; readonly limit?: number | undefined }) =>
  Effect.flatMap(Inbox, (inbox) => inbox.listDeadLetters(options))

/**
 * Replays one dead letter; fails with `InboxError` NotFound when there is none with that id.
 *
 * @since 0.1.0
 */
export const replay = Effect.fn("DeadLetters.replay")(function*(id: number) {
  const inbox = yield* Inbox
  const outbox = yield* Outbox
  const uow = yield* UnitOfWork
  return yield* uow.transaction(Effect.gen(function*() {
    const letter: DeadLetter = yield* inbox.getDeadLetter(id)
    // the consumer claimed the failed message when it gave up; forget that, or the replay is a duplicate
    if (letter.identifier !== null) yield* inbox.release(letter.group, letter.topic, letter.identifier)
    const { ["x-error"]: _error, ["x-consumer-group"]: _group, ...headers } = letter.headers as Record<string, string>
    yield* outbox.stage([{ topic: letter.topic, key: letter.key, value: letter.value, headers: { ...headers, "x-replayed-from": String(id) } }])
    yield* inbox.removeDeadLetter(id)
    return letter
  }))
})

/**
 * Replays every dead letter (of `topic`, when given); returns how many.
 *
 * @since 0.1.0
 */
export const replayAll = Effect.fn("DeadLetters.replayAll")(function*(options?: { readonly topic?: string | undefined }) {
  let count = 0
  for (;;) {
    const batch = yield* list({ topic: options?.topic, limit: 500 })
    if (batch.length === 0) return count
    for (const letter of batch) {
      yield* replay(letter.id)
      count++
    }
  }
})
