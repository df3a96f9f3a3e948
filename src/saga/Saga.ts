/**
 * Saga definitions: an ordered list of steps over a Schema-typed context.
 *
 * ```ts
 * const ScheduleExam = Saga.make("ScheduleExam", { version: 1, context: Ctx })
 *   .remote("BookRoom", (ctx) => ({ topic: "BookRoom", content: { examUuid: ctx.examUuid, seats: ctx.seats } }))
 *   .onSuccess((ctx, reply) => Effect.succeed({ ...ctx, roomUuid: (reply as { roomUuid: string }).roomUuid }))
 *   .onFailure((ctx) => ({ topic: "ReleaseRoom", content: { examUuid: ctx.examUuid } }))
 *   .local("MarkScheduled", (ctx) => markScheduled(ctx))
 *   .build
 * ```
 *
 * - **Remote step**: sends a command; the execution pauses until the reply. 200 → `onSuccess(ctx,
 *   reply)` (default: context unchanged); 400 → `onError(ctx, reply)` (continue with the context it
 *   returns, or fail); 500, no reply in time, or a failing hook → the step fails. `onFailure` is the
 *   compensation command, sent (and acknowledged) when a later step fails or this one does.
 * - **Local step**: an effect inside the execution's transaction returning the new context;
 *   `onFailure` is its compensation effect.
 * - **Conditional step**: the first branch whose condition holds runs its sub-saga; else `otherwise`.
 *
 * `build` checks the definition: at least one step, every step executable, no hook set twice — a
 * `SagaDefinitionError`, never a surprise at run time.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Schema } from "effect"

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
 * The immutable builder; each hook method applies to the last step added.
 *
 * @category constructors
 * @since 0.1.0
 */
export class Builder<C, R = never> {
  readonly name: string
  readonly version: number
  readonly context: Schema.Codec<C, unknown>
  readonly timeout: Duration.Duration | undefined
  readonly steps: ReadonlyArray<Step<C, any>>
  readonly problems: ReadonlyArray<{ readonly step: string; readonly message: string }>

  constructor(options: {
    name: string
    version: number
    context: Schema.Codec<C, unknown>
    timeout: Duration.Duration | undefined
    steps: ReadonlyArray<Step<C, any>>
    problems: ReadonlyArray<{ readonly step: string; readonly message: string }>
  }) {
    this.name = options.name
    this.version = options.version
    this.context = options.context
    this.timeout = options.timeout
    this.steps = options.steps
    this.problems = options.problems
  }

  private with<R2>(steps: ReadonlyArray<Step<C, any>>, problem?: { step: string; message: string }): Builder<C, R | R2> {
    return new Builder<C, R | R2>({ name: this.name, version: this.version, context: this.context, timeout: this.timeout, steps, problems: problem ? [...this.problems, problem] : this.problems })
  }

  private last(hook: string): { step: Step<C, any> | undefined; problem: { step: string; message: string } | undefined } {
    const step = this.steps[this.steps.length - 1]
    return step === undefined ? { step, problem: { step: "(none)", message: `${hook} before any step` } } : { step, problem: undefined }
  }

  private hook<K extends string>(hook: K, kinds: ReadonlyArray<Step<C, any>["_tag"]>, field: string, value: unknown) {
    const { problem, step } = this.last(hook)
    if (step === undefined) return this.with(this.steps, problem)
    if (!kinds.includes(step._tag)) return this.with(this.steps, { step: step.name, message: `${hook} does not apply to a ${step._tag.toLowerCase()} step` })
    if ((step as unknown as Record<string, unknown>)[field] !== undefined) return this.with(this.steps, { step: step.name, message: `${hook} is set twice` })
    return this.with([...this.steps.slice(0, -1), { ...step, [field]: value } as Step<C, any>])
  }

  /** Adds a remote step: the command to send. */
  remote(name: string, execute: (context: C) => SagaRequest): Builder<C, R> {
    return this.with([...this.steps, { _tag: "Remote", name, execute, onSuccess: undefined, onError: undefined, compensate: undefined, timeout: undefined }])
  }

  /** Adds a local step: an effect returning the new context. */
  local<R2>(name: string, execute: (context: C) => Effect.Effect<C, unknown, R2>): Builder<C, R | R2> {
    return this.with<R2>([...this.steps, { _tag: "Local", name, execute, compensate: undefined }])
  }

  /** Adds a conditional step: the first branch whose `when` holds runs; else `otherwise` (or nothing). */
  conditional<R2>(
    name: string,
    branches: ReadonlyArray<{ readonly when: (context: C) => boolean; readonly saga: Builder<C, R2> }>,
    otherwise?: Builder<C, R2>
  ): Builder<C, R | R2> {
    const subs = [...branches.map((b) => b.saga), ...(otherwise ? [otherwise] : [])]
    const problem = subs.flatMap((s) => s.problems.map((p) => ({ step: `${name} > ${p.step}`, message: p.message })))[0]
      ?? (subs.find((s) => s.steps.length === 0) ? { step: name, message: "a branch has no steps" } : undefined)
    return this.with<R2>([...this.steps, {
      _tag: "Conditional",
      name,
      branches: branches.map((b) => ({ when: b.when, saga: b.saga.steps })),
      otherwise: otherwise?.steps
    }], problem)
  }

  /** Remote step: what to do with a 200 reply (returns the new context). */
  onSuccess<R2>(f: (context: C, reply: unknown) => Effect.Effect<C, unknown, R2>): Builder<C, R | R2> {
    return this.hook("onSuccess", ["Remote"], "onSuccess", f) as Builder<C, R | R2>
  }

  /** Remote step: what to do with a 400 reply (return a context to go on, fail to compensate). */
  onError<R2>(f: (context: C, reply: unknown) => Effect.Effect<C, unknown, R2>): Builder<C, R | R2> {
    return this.hook("onError", ["Remote"], "onError", f) as Builder<C, R | R2>
  }

  /** The compensation: a command (remote step) or an effect (local step). */
  onFailure<R2>(f: ((context: C) => SagaRequest) | ((context: C) => Effect.Effect<void, unknown, R2>)): Builder<C, R | R2> {
    return this.hook("onFailure", ["Remote", "Local"], "compensate", f) as Builder<C, R | R2>
  }

  /** Remote step: how long to wait for the reply (default: the manager's). */
  withTimeout(duration: Duration.Input): Builder<C, R> {
    return this.hook("withTimeout", ["Remote"], "timeout", Duration.fromInputUnsafe(duration)) as Builder<C, R>
  }

  /** The checked definition. */
  get build(): Effect.Effect<Definition<C, R>, SagaDefinitionError> {
    const fail = (step: string, message: string) => Effect.fail(new SagaDefinitionError({ saga: this.name, step, message }))
    if (!namePattern.test(this.name)) return fail("(saga)", `Invalid saga name ${JSON.stringify(this.name)}`)
    if (!Number.isInteger(this.version) || this.version < 1) return fail("(saga)", `Version must be a positive integer, got ${this.version}`)
    const first = this.problems[0]
    if (first !== undefined) return fail(first.step, first.message)
    if (this.steps.length === 0) return fail("(saga)", "A saga needs at least one step")
    const names = new Set<string>()
    const check = (steps: ReadonlyArray<Step<C, any>>, prefix: string): { step: string; message: string } | undefined => {
      for (const s of steps) {
        const full = prefix + s.name
        if (!namePattern.test(s.name)) return { step: full, message: `Invalid step name ${JSON.stringify(s.name)}` }
        if (names.has(full)) return { step: full, message: "Two steps have the same name" }
        names.add(full)
        if (s._tag !== "Conditional" && typeof s.execute !== "function") return { step: full, message: "The step has nothing to execute" }
        if (s._tag === "Conditional") {
          if (s.branches.length === 0 && s.otherwise === undefined) return { step: full, message: "A conditional step needs a branch" }
          for (const [i, b] of s.branches.entries()) {
            const p = check(b.saga, `${full}[${i}]>`)
            if (p) return p
          }
          if (s.otherwise) {
            const p = check(s.otherwise, `${full}[else]>`)
            if (p) return p
          }
        }
      }
      return undefined
    }
    const problem = check(this.steps, "")
    if (problem) return fail(problem.step, problem.message)
    return Effect.succeed({ name: this.name, version: this.version, context: this.context, steps: this.steps, timeout: this.timeout })
  }
}

/**
 * Starts a definition.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <C>(name: string, options: { readonly version: number; readonly context: Schema.Codec<C, unknown>; readonly timeout?: Duration.Input }): Builder<C> =>
  new Builder<C>({
    name,
    version: options.version,
    context: options.context,
    timeout: options.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout),
    steps: [],
    problems: []
  })

/**
 * A sub-saga for a conditional branch (same context).
 *
 * @category constructors
 * @since 0.1.0
 */
export const branch = <C>(of: Builder<C, any>): Builder<C> => new Builder<C>({ name: of.name, version: of.version, context: of.context, timeout: undefined, steps: [], problems: [] })

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
