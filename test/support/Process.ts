/** Runs a service as a child process (`effect-minos start …`) and waits until it is ready. */
import { Effect, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { binArgs } from "./Bin.ts"

export interface ServiceProcess {
  readonly url: string
  readonly child: ChildProcess
  readonly output: () => string
  /** Sends a signal and waits for the exit code. */
  readonly stop: (signal?: NodeJS.Signals) => Effect.Effect<number | null>
}

/**
 * Starts `bin/effect-minos.js start …args` with `env`; fails if it is not ready within `timeoutMs`.
 * `watch` sees the output so far after every chunk (to act on a log line before the service is ready).
 */
export const start = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  timeoutMs = 60_000,
  watch?: (output: string) => void
): Effect.Effect<ServiceProcess, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<ServiceProcess, Error>((resume) => {
      const child = spawn(process.execPath, [...binArgs, "start", ...args], {
        env: { ...process.env, ...env, NO_COLOR: "1", KAFKAJS_NO_PARTITIONER_WARNING: "1" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let out = ""
      let done = false
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
      const stop = (signal: NodeJS.Signals = "SIGTERM") =>
        Effect.promise(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal)
          return exited
        })
      const timer = setTimeout(() => {
        if (done) return
        done = true
        child.kill("SIGKILL")
        resume(Effect.fail(new Error(`service ${args.join(" ")} not ready in ${timeoutMs} ms:\n${out}`)))
      }, timeoutMs)
      const onData = (chunk: Buffer) => {
        out += chunk.toString()
        watch?.(out)
        const m = /ready at (http:\/\/[^\s)]+)/.exec(out)
        if (m && !done) {
          done = true
          clearTimeout(timer)
          resume(Effect.succeed({ url: m[1]!.replace("0.0.0.0", "127.0.0.1"), child, output: () => out, stop }))
        }
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      child.once("exit", (code) => {
        if (done) return
        done = true
        clearTimeout(timer)
        resume(Effect.fail(new Error(`service ${args.join(" ")} exited with ${code} before ready:\n${out}`)))
      })
    }),
    (p) => p.stop("SIGKILL").pipe(Effect.asVoid)
  )

/** JSON over HTTP. */
export const http = (method: string, url: string, body?: unknown) =>
  Effect.promise(async () => {
    const res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
    })
    const text = await res.text()
    let json: any = undefined
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined
    } catch {
      json = text
    }
    return { status: res.status, body: json }
  })

/** A free TCP port on 127.0.0.1. */
export const freePort = Effect.promise(() =>
  new Promise<number>((resolve, reject) => {
    import("node:net").then(({ createServer }) => {
      const srv = createServer()
      srv.once("error", reject)
      srv.listen(0, "127.0.0.1", () => {
        const port = (srv.address() as { port: number }).port
        srv.close(() => resolve(port))
      })
    })
  })
)
