/**
 * Seeded fuzzed HTTP requests against a service: malformed JSON, wrong types, huge and deeply
 * nested bodies, NUL and lone surrogates, path traversal, SQL in query parameters, and bad framing
 * sent over raw sockets. The same seed gives the same requests.
 */
import { Effect } from "effect"
import { connect } from "node:net"
import type { Random } from "./Ledger.ts"

export interface Case {
  readonly kind: string
  /** Raw bytes for the socket, or a request for `fetch`. */
  readonly raw?: Buffer
  readonly method?: string
  readonly path?: string
  readonly body?: string
  readonly contentType?: string
}

const nasty = ["\u0000", "a\u0000b", "\ud800", "x\udfffy", "\udc00\ud800", "\uffff", "\u202e", "🙂", "\\", "'", "\"", "%00", "${jndi:x}", "<script>", "../../etc/passwd"]
const sql = ["' OR '1'='1", "1; DROP TABLE minos_events; --", "\" OR 1=1 --", "1) UNION SELECT * FROM pg_shadow --", "%' AND pg_sleep(5) --", "$1", "?", "\\x00", "'; COPY minos_events TO '/tmp/x'; --"]
const traversal = ["/../../etc/passwd", "/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd", "/exams/..", "/exams/../system/health", "/exams/%00", "/exams/%ZZ", "/exams/%", "//exams", "/exams//x", "/exams/" + "a".repeat(5000), "/\u0000", "/exams/%c0%ae%c0%ae/", "/exams/..;/x", "/.env", "/node_modules/effect/package.json"]

/** Every byte percent-encoded (lone surrogates become U+FFFD; raw ones are sent as %ED%A0%80 elsewhere). */
const pct = (text: string) => Array.from(Buffer.from(text, "utf8"), (b) => `%${b.toString(16).padStart(2, "0")}`).join("")

/** A JSON text with `\u0000` or a lone surrogate escaped in it (JSON.parse turns them into the real thing). */
const escaped = (rnd: Random) => rnd.pick(["\\u0000", "\\ud800", "\\udfff", "a\\u0000", "\\ud83d", "x\\udc00y"])

const valid = (rnd: Random) => ({ title: `fuzz ${rnd.int(0, 1e6)}`, subject: "fuzz", durationMinutes: rnd.int(1, 600) })

const wrongValues = (rnd: Random): unknown => rnd.pick<unknown>([null, true, 0, -1, 1.5, 1e308, -0, "", "x".repeat(rnd.int(201, 5000)), [], {}, [1, 2], { a: 1 }, "90", 601, 0.0001, Number.MAX_SAFE_INTEGER + 2])

const deep = (n: number, open: string, close: string, inner = "1") => open.repeat(n) + inner + close.repeat(n)

const bodies = (rnd: Random): ReadonlyArray<readonly [string, () => string]> => {
  const v = valid(rnd)
  const field = rnd.pick(["title", "subject", "durationMinutes", "status", "seats", "roomUuid", "expectedVersion"])
  return [
    ["malformed JSON", () => rnd.pick(["{", "}", "{\"title\":", "{'title':'x'}", "{\"title\":\"x\",}", "[1,2", "nul", "NaN", "{\"a\":1}{", "\ufeff{}", "{\"title\": \"x\" /* c */}", "{\"durationMinutes\": 01}", "{\"t\":\"\\x41\"}", "\"\\u12\"", "{\"a\":\"\n\"}", "\u0000"])],
    ["wrong types", () => JSON.stringify({ ...v, [field]: wrongValues(rnd) })],
    ["wrong shape", () => JSON.stringify(rnd.pick<unknown>([[v], "x", 1, null, true, { body: v }, { ...v, __proto__: { x: 1 } }, { ...v, constructor: { prototype: { x: 1 } } }]))],
    ["extra fields", () => JSON.stringify({ ...v, uuid: "00000000-0000-0000-0000-000000000000", version: 99, _tag: "Deleted", [`k${rnd.int(0, 99)}`]: wrongValues(rnd) })],
    ["NUL or lone surrogate", () => `{"title":"${escaped(rnd)}","subject":"fuzz","durationMinutes":5}`],
    ["NUL or lone surrogate", () => `{"title":"ok","subject":"fuzz${escaped(rnd)}","durationMinutes":5}`],
    ["NUL or lone surrogate in a key", () => `{"title":"ok","subject":"fuzz","durationMinutes":5,"${escaped(rnd)}":1}`],
    ["raw control and odd characters", () => JSON.stringify({ ...v, title: rnd.pick(nasty) })],
    ["deeply nested", () => rnd.pick([() => deep(rnd.int(1_000, 100_000), "[", "]"), () => deep(rnd.int(1_000, 50_000), "{\"a\":", "}"), () => `{"title":${deep(10_000, "[", "]")},"subject":"x","durationMinutes":1}`])()],
    ["huge", () => rnd.pick([() => `{"title":"${"x".repeat(2_000_000)}"}`, () => `{"title":"${"y".repeat(900_000)}","subject":"s","durationMinutes":1}`, () => `[${"1,".repeat(400_000)}1]`, () => `{${Array.from({ length: 50_000 }, (_, i) => `"k${i}":${i}`).join(",")}}`])()],
    ["numbers", () => `{"title":"n","subject":"s","durationMinutes":${rnd.pick(["1e400", "-1e400", "1.0", "5e0", "0x10", "Infinity", "-0", "1E2", "9".repeat(400)])}}`]
  ]
}

/** One fuzzed request: `uuids` are existing aggregates to aim some requests at. */
export const next = (rnd: Random, uuids: ReadonlyArray<string>, prefix = "/exams"): Case => {
  const target = uuids.length > 0 ? rnd.pick(uuids) : "00000000-0000-4000-8000-000000000000"
  const roll = rnd.next()
  if (roll < 0.45) {
    const [kind, make] = rnd.pick(bodies(rnd))
    const body = make()
    const method = rnd.pick(["POST", "PATCH", "PATCH", "POST", "PUT", "DELETE"])
    const path = method === "POST" ? prefix : `${prefix}/${target}`
    return { kind, method, path, body, contentType: rnd.pick(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", ""]) }
  }
  if (roll < 0.6) {
    const q = rnd.pick(sql)
    const param = rnd.pick(["subject", "limit", "waitFor", "subject", "ordering", "subject[]", "__proto__", "constructor[prototype][x]"])
    return { kind: "SQL in query parameters", method: "GET", path: `${prefix}?${pct(param)}=${pct(q)}${rnd.next() < 0.3 ? `&limit=${pct(rnd.pick(sql))}` : ""}` }
  }
  if (roll < 0.7) {
    return { kind: "NUL or lone surrogate in the URL", method: rnd.pick(["GET", "DELETE", "PATCH"]), path: `${prefix}/${rnd.pick(["%00", "%ED%A0%80", "%ED%BF%BF", "%C0%80", "%FF%FE", target + "%00", "%F4%90%80%80"])}`, body: "{}", contentType: "application/json" }
  }
  if (roll < 0.8) {
    return { kind: "path traversal", method: rnd.pick(["GET", "POST", "DELETE"]), path: rnd.pick(traversal) }
  }
  if (roll < 0.85) {
    return { kind: "odd methods and headers", method: rnd.pick(["OPTIONS", "HEAD", "TRACE", "PROPFIND", "PATCH"]), path: rnd.pick([prefix, `${prefix}/${target}`, "/system/health", "/spec/openapi"]) }
  }
  return { kind: "bad framing", raw: framing(rnd, target, prefix) }
}

const crlf = (...lines: ReadonlyArray<string>) => lines.join("\r\n")

/** Requests no well-behaved client sends: lying lengths, broken chunks, bad request lines, bytes. */
const framing = (rnd: Random, target: string, prefix: string): Buffer => {
  const body = JSON.stringify(valid(rnd))
  const cases: ReadonlyArray<() => Buffer | string> = [
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Type: application/json", `Content-Length: ${body.length + rnd.int(1, 50)}`, "", body),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Type: application/json", `Content-Length: ${Math.max(0, body.length - rnd.int(1, 10))}`, "", body),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Length: -1", "", body),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Length: 99999999999999999999", "", body),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Length: 5", "Content-Length: 6", "", body),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Transfer-Encoding: chunked", "Content-Length: 3", "", "zz", body, "0", "", ""),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Type: application/json", "Transfer-Encoding: chunked", "", "ffffffffffff", body, "0", "", ""),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Type: application/json", "Transfer-Encoding: chunked", "", `${body.length.toString(16)}`, body, "", ""),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Transfer-Encoding: gzip, chunked", "", "0", "", ""),
    () => crlf(`GET ${prefix}/${target} HTTP/1.1`, "Host: x", `X-Long: ${"a".repeat(rnd.int(10_000, 80_000))}`, "", ""),
    () => crlf(`GET ${prefix}/${target} HTTP/1.1`, ...Array.from({ length: rnd.int(200, 3_000) }, (_, i) => `X-H${i}: v`), "", ""),
    () => crlf(`GET ${prefix}/${target} HTTP/9.9`, "Host: x", "", ""),
    () => crlf(`GET ${prefix}`, "", ""),
    () => crlf(`G\u0000T ${prefix} HTTP/1.1`, "Host: x", "", ""),
    () => crlf(`GET ${prefix}/\u0000 HTTP/1.1`, "Host: x", "", ""),
    () => crlf(`GET ${prefix} HTTP/1.1`, "Host: x", "Bad Header Name: v", "", ""),
    () => crlf(`GET ${prefix} HTTP/1.1`, "Host: x", "X-Inj: a\rb", "", ""),
    () => crlf(`GET http://evil.example${prefix} HTTP/1.1`, "Host: x", "", ""),
    () => crlf(`GET * HTTP/1.1`, "Host: x", "", ""),
    () => crlf(`CONNECT 127.0.0.1:1 HTTP/1.1`, "Host: x", "", ""),
    () => crlf(`GET ${prefix} HTTP/1.1`, "Host: x", "Upgrade: websocket", "Connection: Upgrade", "", ""),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Type: application/json", "Expect: 100-continue", `Content-Length: ${body.length}`, "", body),
    () => Buffer.from(Array.from({ length: rnd.int(1, 4096) }, () => rnd.int(0, 255))),
    () => crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Type: application/json", `Content-Length: ${body.length}`, "", body) + crlf("", `POST ${prefix} HTTP/1.1`, "Content-Length: 2", "", "{"),
    () => Buffer.concat([Buffer.from(crlf(`POST ${prefix} HTTP/1.1`, "Host: x", "Content-Type: application/json", "Content-Length: 8", "", "")), Buffer.from([0x22, 0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x22])]),
    () => crlf(`PATCH ${prefix}/${target} HTTP/1.1`, "Host: x", "Content-Type: application/json", `Content-Length: ${body.length}`, "", body).slice(0, rnd.int(10, body.length + 60))
  ]
  const out = rnd.pick(cases)()
  return typeof out === "string" ? Buffer.from(out, "latin1") : out
}

export interface Answer {
  /** 0 when the server closed without an HTTP answer (fine for garbage). */
  readonly status: number
  readonly body: string
}

/**
 * The first final answer in `data`: interim `1xx` answers (100 Continue) are skipped, and the body is
 * cut at its `content-length` (a pipelined second answer may follow).
 */
const parse = (data: Buffer, why: string): Answer => {
  let text = data.toString("latin1")
  for (;;) {
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text)
    const sep = text.indexOf("\r\n\r\n")
    if (m === null || sep < 0) return { status: 0, body: `${why}; ${data.length} bytes: ${data.toString("latin1").slice(0, 200)}` }
    const status = Number(m[1])
    const head = text.slice(0, sep)
    const rest = text.slice(sep + 4)
    if (status >= 100 && status < 200) {
      text = rest
      continue
    }
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)
    const body = length ? Buffer.from(rest, "latin1").subarray(0, Number(length[1])).toString("utf8") : Buffer.from(rest, "latin1").toString("utf8")
    return { status, body: body.slice(0, 4000) }
  }
}

/**
 * Sends raw bytes, reads until the server closes or `timeoutMs`, parses the first status line.
 * `halfClose` ends the sending side (for framing that leaves the server waiting for more); Node's
 * server drops a request whose client half-closed before the answer, so well-formed requests keep
 * the socket open and rely on `Connection: close`.
 */
export const sendRaw = (port: number, bytes: Buffer, options: { readonly halfClose?: boolean; readonly timeoutMs?: number } = {}): Effect.Effect<Answer> =>
  Effect.callback<Answer>((resume) => {
    const socket = connect({ host: "127.0.0.1", port })
    let data = Buffer.alloc(0)
    let done = false
    const finish = (why: string) => {
      if (done) return
      done = true
      socket.destroy()
      resume(Effect.succeed(parse(data, why)))
    }
    socket.setTimeout(options.timeoutMs ?? 5_000, () => finish("timeout"))
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk])
      // one answer is enough: the first response's head and a little of its body
      if (data.length > 64 * 1024) finish("enough")
    })
    socket.on("error", (e) => finish(`error ${e.message}`))
    socket.on("close", () => finish("closed"))
    socket.on("connect", () => {
      socket.write(bytes)
      if (options.halfClose === true) socket.end()
    })
    return Effect.sync(() => socket.destroy())
  })

/** The bytes of a case: its raw framing, or a well-formed HTTP/1.1 request (paths sent verbatim). */
export const bytesOf = (c: Case): Buffer => {
  if (c.raw !== undefined) return c.raw
  const body = c.body === undefined ? Buffer.alloc(0) : Buffer.from(c.body, "utf8")
  const head = [
    `${c.method ?? "GET"} ${c.path ?? "/"} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Connection: close",
    ...(c.contentType ? [`Content-Type: ${c.contentType}`] : []),
    ...(c.body === undefined ? [] : [`Content-Length: ${body.length}`]),
    "",
    ""
  ].join("\r\n")
  return Buffer.concat([Buffer.from(head, "latin1"), body])
}

/** The system routes every service has, with fuzzed parameters. */
export const system = (rnd: Random): Case => {
  const q = pct(rnd.pick([...sql, ...nasty]))
  return {
    kind: "system routes",
    method: rnd.pick(["GET", "POST"]),
    path: rnd.pick([`/system/dead-letters?topic=${q}`, `/system/dead-letters?limit=${q}`, `/system/dead-letters/${q}/replay`, `/system/dead-letters/replay?topic=${q}`, `/sagas/${q}`, `/system/health?x=${q}`, `/spec/openapi?${q}`]),
    body: rnd.next() < 0.5 ? "{}" : rnd.pick(["{", "null", escaped(rnd)]),
    contentType: "application/json"
  }
}
