/**
 * A cross-service contract: the name (topic) of a command or query with the Schemas of its payload,
 * its success reply and its error union. The participant declares its handler with it
 * (`Router.command(BookRoom, handle)`) and callers use the same value (`RequestClient.call`,
 * `Saga.remote`), so both sides agree on the shapes and the caller gets a typed reply and a typed
 * error union instead of `unknown`.
 *
 * ```ts
 * export const BookRoom = Contract.command("BookRoom", {
 *   payload: Schema.Struct({ examUuid: Schema.String, seats: Schema.Int }),
 *   success: Schema.Struct({ roomUuid: Schema.String }),
 *   error: NoRoomAvailable
 * })
 * ```
 *
 * A contract is a plain value (a name and Schemas, nothing else), so spec generators and other
 * transports can read it.
 *
 * @since 0.1.0
 */
import { Exit, Schema } from "effect"

/**
 * @category models
 * @since 0.1.0
 */
export interface Contract<P, A, E> {
  readonly _tag: "Contract"
  readonly kind: "command" | "query"
  /** The topic the command is sent on. */
  readonly name: string
  readonly payload: Schema.Codec<P, unknown>
  /** The success reply; `undefined`: the reply content is not checked (`void` commands). */
  readonly success: Schema.Codec<A, unknown> | undefined
  /** The domain errors the handler answers with (a 400 reply), as one Schema (a union of tagged errors). */
  readonly error: Schema.Codec<E, unknown>
}

/**
 * Type helpers.
 *
 * @since 0.1.0
 */
export declare namespace Contract {
  export type Any = Contract<any, any, any>
  export type Payload<C> = C extends Contract<infer P, any, any> ? P : never
  export type Success<C> = C extends Contract<any, infer A, any> ? A : never
  export type Error<C> = C extends Contract<any, any, infer E> ? E : never
}

/** A contract whose handler declares no domain error. */
const NoError: Schema.Codec<never, unknown> = Schema.Never as unknown as Schema.Codec<never, unknown>

const make = (kind: "command" | "query") =>
<P, A = void, E = never>(
  name: string,
  options: {
    readonly payload: Schema.Codec<P, unknown>
    readonly success?: Schema.Codec<A, unknown>
    readonly error?: Schema.Codec<E, unknown>
  }
): Contract<P, A, E> => ({
  _tag: "Contract",
  kind,
  name,
  payload: options.payload,
  success: options.success,
  error: options.error ?? (NoError as unknown as Schema.Codec<E, unknown>)
})

/**
 * A command contract.
 *
 * @category constructors
 * @since 0.1.0
 */
export const command = make("command")

/**
 * A query contract.
 *
 * @category constructors
 * @since 0.1.0
 */
export const query = make("query")

/**
 * @category guards
 * @since 0.1.0
 */
export const isContract = (u: unknown): u is Contract.Any =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "Contract"


/**
 * What a reply means under a contract.
 *
 * @category models
 * @since 0.1.0
 */
export type Decoded<A, E> =
  | { readonly _tag: "Success"; readonly value: A }
  | { readonly _tag: "Error"; readonly error: E }
  /** A 500/600 reply, a 400 outside the contract (`invalid`: false), or a reply that does not match it (`invalid`: true). */
  | { readonly _tag: "Failed"; readonly message: string; readonly invalid: boolean }

const text = (content: unknown) => JSON.stringify(content ?? null).slice(0, 500)

/**
 * What a reply of `status` with `content` means under `contract` (used by `RequestClient.call` and the saga manager).
 *
 * @since 0.1.0
 */
export const decodeReply = <P, A, E>(contract: Contract<P, A, E>, status: number, content: unknown): Decoded<A, E> => {
  if (status === 200) {
    if (contract.success === undefined) return { _tag: "Success", value: content as A }
    const exit = Schema.decodeUnknownExit(contract.success)(content)
    return Exit.isSuccess(exit)
      ? { _tag: "Success", value: exit.value }
      : { _tag: "Failed", invalid: true, message: `${contract.name} replied 200 with a body its contract does not accept: ${text(content)}` }
  }
  if (status === 400) {
    const exit = Schema.decodeUnknownExit(contract.error)(content)
    if (Exit.isSuccess(exit)) return { _tag: "Error", error: exit.value }
    return { _tag: "Failed", invalid: false, message: `${contract.name} replied 400: ${text(content)}` }
  }
  return { _tag: "Failed", invalid: false, message: `${contract.name} replied ${status}: ${text(content)}` }
}
