/**
 * Saga definitions: an ordered list of steps over a Schema-typed context.
 *
 * ```ts
 * const ScheduleExam = Saga.make("ScheduleExam", { version: 1, context: Ctx })
 *   .remote("BookRoom", BookRoom, (ctx) => ({ examUuid: ctx.examUuid, seats: ctx.seats }))
 *   .onSuccess((ctx, reply) => Effect.succeed({ ...ctx, roomUuid: reply.roomUuid }))   // reply: typed
 *   .onFailure((ctx) => Saga.request(ReleaseRoom, { examUuid: ctx.examUuid }))
 *   .local("MarkScheduled", (ctx) => markScheduled(ctx))
 *   .build
 * ```
 *
 * - **Remote step**: sends a command of a shared {@link Contract.Contract} (or, untyped, a topic and
 *   content); the execution pauses until the reply. 200 → `onSuccess(ctx, reply)` with the decoded
 *   reply (default: context unchanged); 400 with one of the contract's errors → `onError(ctx, error)`
 *   (continue with the context it returns, or fail); a 400 `Conflict` (the participant lost a race
 *   for the same aggregate) → the step is sent again on fresh state within the saga's contention
 *   budget; anything else, no reply in time, or a failing hook → the step fails. `onFailure` is the
 *   compensation command, sent (and acknowledged) when a later step fails or this one does.
 * - **Local step**: an effect inside the execution's transaction returning the new context;
 *   `onFailure` is its compensation effect.
 * - **Conditional step**: the first branch whose condition holds runs its sub-saga; else `otherwise`.
 *
 * `build` is a plain value; {@link check} (run by the saga manager when the service's layer is built)
 * refuses a definition without steps, with a step that executes nothing, or a hook set twice — a
 * `SagaDefinitionError` at start-up, never a surprise at run time.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Schema } from "effect"
import type * as Contract from "../router/Contract.ts"

/**
 * A command a remote step sends.
 *
 * @category models
 * @since 0.1.0
 */
export interface SagaRequest {
  readonly topic: string
  readonly content: unknown
  readonly headers?: Readonly<Record<string, string>>
}

/** @category models @since 0.1.0 */
export interface RemoteStep<C, R> {
  readonly _tag: "Remote"
  readonly name: string
  /** The contract whose Schemas encode the command and decode the reply (untyped steps: none). */
  readonly contract: Contract.Contract.Any | undefined
  readonly execute: (context: C) => SagaRequest
  readonly onSuccess: ((context: C, reply: unknown) => Effect.Effect<C, unknown, R>) | undefined
  readonly onError: ((context: C, reply: unknown) => Effect.Effect<C, unknown, R>) | undefined
  readonly compensate: ((context: C) => SagaRequest) | undefined
  readonly timeout: Duration.Duration | undefined
}

/** @category models @since 0.1.0 */
export interface LocalStep<C, R> {
  readonly _tag: "Local"
  readonly name: string
  readonly execute: (context: C) => Effect.Effect<C, unknown, R>
  readonly compensate: ((context: C) => Effect.Effect<void, unknown, R>) | undefined
}

/** @category models @since 0.1.0 */
export interface ConditionalStep<C, R> {
  readonly _tag: "Conditional"
  readonly name: string
  readonly branches: ReadonlyArray<{ readonly when: (context: C) => boolean; readonly saga: ReadonlyArray<Step<C, R>> }>
  readonly otherwise: ReadonlyArray<Step<C, R>> | undefined
}

/** @category models @since 0.1.0 */
export type Step<C, R> = RemoteStep<C, R> | LocalStep<C, R> | ConditionalStep<C, R>

/**
 * A checked saga definition.
 *
 * @category models
 * @since 0.1.0
 */
export interface Definition<C, R = never> {
  readonly name: string
  readonly version: number
  readonly context: Schema.Codec<C, unknown>
  readonly steps: ReadonlyArray<Step<C, R>>
  /** The whole execution's time limit. */
  readonly timeout: Duration.Duration | undefined
  /** How many times a step that lost a race for an aggregate is tried again (default: the manager's). */
  readonly contentionRetries: number | undefined
  /** What {@link check} refuses (empty for a valid definition). */
  readonly problems: ReadonlyArray<{ readonly step: string; readonly message: string }>
}

/** @category models @since 0.1.0 */
export declare namespace Definition {
  export type Any = Definition<any, any>
  export type Context<D> = D extends Definition<infer C, any> ? C : never
  export type Services<D> = D extends Definition<any, infer R> ? R : never
}

/**
 * @category errors
 * @since 0.1.0
 */
export class SagaDefinitionError extends Schema.TaggedError<SagaDefinitionError>()("SagaDefinitionError", {
  saga: Schema.String,
  step: Schema.String,
  message: Schema.String
}) {}

const namePattern = /^[A-Za-z][A-Za-z0-9_-]{0,99}$/

/**
 * What the last remote step's reply and errors are, for the typed hooks.
 *
 * @category models
 * @since 0.1.0
 */
export interface Last<A, E> {
  readonly reply: A
  readonly error: E
}

/**
 * The immutable builder; each hook method applies to the last step added. `L` types the hooks of
 * the last remote step (its contract's success and error).
 *
 * @category constructors
 * @since 0.1.0
 */
export class Builder<C, R = never, L extends Last<any, any> = Last<unknown, unknown>> {
  readonly name: string
  readonly version: number
  readonly context: Schema.Codec<C, unknown>
  readonly timeout: Duration.Duration | undefined
  readonly contentionRetries: number | undefined
  readonly steps: ReadonlyArray<Step<C, any>>
  readonly problems: ReadonlyArray<{ readonly step: string; readonly message: string }>

  constructor(options: {
    name: string
    version: number
    context: Schema.Codec<C, unknown>
    timeout: Duration.Duration | undefined
    contentionRetries: number | undefined
    steps: ReadonlyArray<Step<C, any>>
    problems: ReadonlyArray<{ readonly step: string; readonly message: string }>
  }) {
    this.name = options.name
    this.version = options.version
    this.context = options.context
    this.timeout = options.timeout
    this.contentionRetries = options.contentionRetries
    this.steps = options.steps
    this.problems = options.problems
  }

  private with<R2, L2 extends Last<any, any> = L>(steps: ReadonlyArray<Step<C, any>>, problem?: { step: string; message: string }): Builder<C, R | R2, L2> {
    return new Builder<C, R | R2, L2>({
      name: this.name,
      version: this.version,
      context: this.context,
      timeout: this.timeout,
      contentionRetries: this.contentionRetries,
      steps,
      problems: problem ? [...this.problems, problem] : this.problems
    })
  }

  private last(hook: string): { step: Step<C, any> | undefined; problem: { step: string; message: string } | undefined } {
    const step = this.steps[this.steps.length - 1]
    return step === undefined ? { step, problem: { step: "(none)", message: `${hook} before any step` } } : { step, problem: undefined }
  }

  private hook<R2>(hook: string, kinds: ReadonlyArray<Step<C, any>["_tag"]>, field: string, value: unknown): Builder<C, R | R2, L> {
    const { problem, step } = this.last(hook)
    if (step === undefined) return this.with(this.steps, problem)
    if (!kinds.includes(step._tag)) return this.with(this.steps, { step: step.name, message: `${hook} does not apply to a ${step._tag.toLowerCase()} step` })
    if ((step as unknown as Record<string, unknown>)[field] !== undefined) return this.with(this.steps, { step: step.name, message: `${hook} is set twice` })
    return this.with([...this.steps.slice(0, -1), { ...step, [field]: value } as Step<C, any>])
  }

  /**
   * Adds a remote step: a command of `contract` with the payload `execute` builds (typed reply and
   * errors in the hooks), or — untyped — `execute` returning a topic and content.
   */
  remote<P, A, E>(name: string, contract: Contract.Contract<P, A, E>, execute: (context: C) => P): Builder<C, R, Last<A, E>>
  remote(name: string, execute: (context: C) => SagaRequest): Builder<C, R, Last<unknown, unknown>>
  remote(name: string, contractOrExecute: Contract.Contract.Any | ((context: C) => SagaRequest), execute?: (context: C) => unknown): Builder<C, R, any> {
    const contract = typeof contractOrExecute === "function" ? undefined : contractOrExecute
    const run: (context: C) => SagaRequest = contract === undefined
      ? (contractOrExecute as (context: C) => SagaRequest)
      : (context) => request(contract, (execute as (context: C) => unknown)(context))
    const problem = contract !== undefined && typeof execute !== "function" ? { step: name, message: "The step has nothing to execute" } : undefined
    return this.with([...this.steps, { _tag: "Remote", name, contract, execute: run, onSuccess: undefined, onError: undefined, compensate: undefined, timeout: undefined }], problem)
  }

  /** Adds a local step: an effect returning the new context. */
  local<R2>(name: string, execute: (context: C) => Effect.Effect<C, unknown, R2>): Builder<C, R | R2, Last<never, never>> {
    return this.with<R2, Last<never, never>>([...this.steps, { _tag: "Local", name, execute, compensate: undefined }])
  }

  /** Adds a conditional step: the first branch whose `when` holds runs; else `otherwise` (or nothing). */
  conditional<R2>(
    name: string,
    branches: ReadonlyArray<{ readonly when: (context: C) => boolean; readonly saga: Builder<C, R2, any> }>,
    otherwise?: Builder<C, R2, any>
  ): Builder<C, R | R2, Last<never, never>> {
    const subs = [...branches.map((b) => b.saga), ...(otherwise ? [otherwise] : [])]
    const problem = subs.flatMap((s) => s.problems.map((p) => ({ step: `${name} > ${p.step}`, message: p.message })))[0]
      ?? (subs.find((s) => s.steps.length === 0) ? { step: name, message: "a branch has no steps" } : undefined)
    return this.with<R2, Last<never, never>>([...this.steps, {
      _tag: "Conditional",
      name,
      branches: branches.map((b) => ({ when: b.when, saga: b.saga.steps })),
      otherwise: otherwise?.steps
    }], problem)
  }

  /** Remote step: what to do with a 200 reply (returns the new context). */
  onSuccess<R2>(f: (context: C, reply: L["reply"]) => Effect.Effect<C, unknown, R2>): Builder<C, R | R2, L> {
    return this.hook<R2>("onSuccess", ["Remote"], "onSuccess", f)
  }

  /** Remote step: what to do with one of the contract's errors (return a context to go on, fail to compensate). */
  onError<R2>(f: (context: C, error: L["error"]) => Effect.Effect<C, unknown, R2>): Builder<C, R | R2, L> {
    return this.hook<R2>("onError", ["Remote"], "onError", f)
  }

  /** The compensation: a command (remote step, see {@link request}) or an effect (local step). */
  onFailure<R2>(f: ((context: C) => SagaRequest) | ((context: C) => Effect.Effect<void, unknown, R2>)): Builder<C, R | R2, L> {
    return this.hook<R2>("onFailure", ["Remote", "Local"], "compensate", f)
  }

  /** Remote step: how long to wait for the reply (default: the manager's). */
  withTimeout(duration: Duration.Input): Builder<C, R, L> {
    return this.hook<never>("withTimeout", ["Remote"], "timeout", Duration.fromInputUnsafe(duration))
  }

  /** The definition, as a plain value; the saga manager {@link check}s it when the service starts. */
  get build(): Definition<C, R> {
    return { name: this.name, version: this.version, context: this.context, steps: this.steps, timeout: this.timeout, contentionRetries: this.contentionRetries, problems: this.problems }
  }
}

/**
 * The command of a contract, encoded with its payload Schema: what a remote step or a compensation sends.
 *
 * @since 0.1.0
 */
export const request = <P>(contract: Contract.Contract<P, any, any>, payload: P, headers?: Readonly<Record<string, string>>): SagaRequest => ({
  topic: contract.name,
  content: Schema.encodeSync(contract.payload)(payload),
  ...(headers === undefined ? {} : { headers })
})

/**
 * What is wrong with a definition, if anything: names, version, at least one step, every step
 * executable, hooks on the right steps and set once.
 *
 * @since 0.1.0
 */
export const check = <C, R>(definition: Definition<C, R>): Effect.Effect<Definition<C, R>, SagaDefinitionError> => {
  const fail = (step: string, message: string) => Effect.fail(new SagaDefinitionError({ saga: definition.name, step, message }))
  if (!namePattern.test(definition.name)) return fail("(saga)", `Invalid saga name ${JSON.stringify(definition.name)}`)
  if (!Number.isInteger(definition.version) || definition.version < 1) return fail("(saga)", `Version must be a positive integer, got ${definition.version}`)
  if (definition.contentionRetries !== undefined && (!Number.isInteger(definition.contentionRetries) || definition.contentionRetries < 0)) {
    return fail("(saga)", `contentionRetries must be a non-negative integer, got ${definition.contentionRetries}`)
  }
  const first = definition.problems[0]
  if (first !== undefined) return fail(first.step, first.message)
  if (definition.steps.length === 0) return fail("(saga)", "A saga needs at least one step")
  const names = new Set<string>()
  const walk = (steps: ReadonlyArray<Step<C, any>>, prefix: string): { step: string; message: string } | undefined => {
    for (const s of steps) {
      const full = prefix + s.name
      if (!namePattern.test(s.name)) return { step: full, message: `Invalid step name ${JSON.stringify(s.name)}` }
      if (names.has(full)) return { step: full, message: "Two steps have the same name" }
      names.add(full)
      if (s._tag !== "Conditional" && typeof s.execute !== "function") return { step: full, message: "The step has nothing to execute" }
      if (s._tag === "Conditional") {
        if (s.branches.length === 0 && s.otherwise === undefined) return { step: full, message: "A conditional step needs a branch" }
        for (const [i, b] of s.branches.entries()) {
          const p = walk(b.saga, `${full}[${i}]>`)
          if (p) return p
        }
        if (s.otherwise) {
          const p = walk(s.otherwise, `${full}[else]>`)
          if (p) return p
        }
      }
    }
    return undefined
  }
  const problem = walk(definition.steps, "")
  if (problem) return fail(problem.step, problem.message)
  return Effect.succeed(definition)
}

/**
 * Starts a definition.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <C>(
  name: string,
  options: {
    readonly version: number
    readonly context: Schema.Codec<C, unknown>
    readonly timeout?: Duration.Input
    /** How many times a step that lost a race for an aggregate is tried again on fresh state (default: the manager's, 16). */
    readonly contentionRetries?: number
  }
): Builder<C> =>
  new Builder<C>({
    name,
    version: options.version,
    context: options.context,
    timeout: options.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout),
    contentionRetries: options.contentionRetries,
    steps: [],
    problems: []
  })

/**
 * A sub-saga for a conditional branch (same context).
 *
 * @category constructors
 * @since 0.1.0
 */
export const branch = <C>(of: Builder<C, any, any>): Builder<C> =>
  new Builder<C>({ name: of.name, version: of.version, context: of.context, timeout: undefined, contentionRetries: undefined, steps: [], problems: [] })

/**
 * A step as an execution runs it: `path` is its position (`"1"`, `"2.0"` inside a branch).
 *
 * @category models
 * @since 0.1.0
 */
export type Flat<C, R> =
  | { readonly _tag: "Step"; readonly path: string; readonly step: Exclude<Step<C, R>, { _tag: "Conditional" }> }
  | { readonly _tag: "Decision"; readonly path: string; readonly step: Extract<Step<C, R>, { _tag: "Conditional" }> }

/**
 * The steps an execution runs, with the conditional choices made so far spliced in (a choice not
 * made yet is a `Decision`).
 *
 * @since 0.1.0
 */
export const flatten = <C, R>(steps: ReadonlyArray<Step<C, R>>, branches: Readonly<Record<string, number>>, prefix = ""): Array<Flat<C, R>> => {
  const out: Array<Flat<C, R>> = []
  steps.forEach((step, i) => {
    const path = `${prefix}${i}`
    if (step._tag !== "Conditional") {
      out.push({ _tag: "Step", path, step })
      return
    }
    const choice = branches[path]
    if (choice === undefined) {
      out.push({ _tag: "Decision", path, step })
      return
    }
    const sub = choice === -1 ? step.otherwise : choice >= 0 ? step.branches[choice]?.saga : undefined
    if (sub !== undefined) out.push(...flatten(sub, branches, `${path}.`))
  })
  return out
}

/**
 * A Mermaid flowchart of the definition: steps in order, conditional branches, and the compensation
 * of each step (dotted).
 *
 * @since 0.1.0
 */
export const toMermaid = (definition: Definition.Any): string => {
  const lines = ["flowchart TD", `  start((${definition.name} v${definition.version}))`]
  let n = 0
  const id = () => `s${n++}`
  const label = (s: string) => s.replace(/"/g, "'")
  const walk = (steps: ReadonlyArray<Step<any, any>>, from: ReadonlyArray<string>): ReadonlyArray<string> => {
    let previous = from
    for (const step of steps) {
      const me = id()
      if (step._tag === "Conditional") {
        lines.push(`  ${me}{"${label(step.name)}"}`)
        for (const p of previous) lines.push(`  ${p} --> ${me}`)
        const ends: Array<string> = []
        step.branches.forEach((b, i) => ends.push(...walk(b.saga, [`${me}_b${i}`]).map((e) => e)))
        step.branches.forEach((_, i) => lines.splice(lines.length, 0, `  ${me}_b${i}([branch ${i + 1}])`, `  ${me} --> ${me}_b${i}`))
        if (step.otherwise) {
          lines.push(`  ${me}_else([otherwise])`, `  ${me} --> ${me}_else`)
          ends.push(...walk(step.otherwise, [`${me}_else`]))
        } else ends.push(me)
        previous = ends
        continue
      }
      const shape = step._tag === "Remote" ? `[/"${label(step.name)} (remote)"/]` : `["${label(step.name)} (local)"]`
      lines.push(`  ${me}${shape}`)
      for (const p of previous) lines.push(`  ${p} --> ${me}`)
      if (step.compensate !== undefined) {
        lines.push(`  ${me}_c["compensate ${label(step.name)}"]`, `  ${me} -.->|on failure| ${me}_c`)
      }
      previous = [me]
    }
    return previous
  }
  const ends = walk(definition.steps, ["start"])
  lines.push("  done((commit))")
  for (const e of ends) lines.push(`  ${e} --> done`)
  return lines.join("\n")
}
