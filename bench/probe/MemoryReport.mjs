// Loaded with `node --import ./bench/probe/MemoryReport.mjs …` by bench/probe/RssProbe.ts: after
// MEMORY_REPORT_MS (default 5000) it writes the process's memory figures as JSON to MEMORY_REPORT_FILE.
import { writeFileSync } from "node:fs"
import v8 from "node:v8"

const file = process.env.MEMORY_REPORT_FILE
if (file) {
  setTimeout(() => {
    const m = process.memoryUsage()
    const h = v8.getHeapStatistics()
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_used_size / 2 ** 20)]))
    writeFileSync(file, JSON.stringify({
      rssMiB: Math.round(m.rss / 2 ** 20),
      heapTotalMiB: Math.round(m.heapTotal / 2 ** 20),
      heapUsedMiB: Math.round(m.heapUsed / 2 ** 20),
      externalMiB: Math.round(m.external / 2 ** 20),
      arrayBuffersMiB: Math.round(m.arrayBuffers / 2 ** 20),
      codeMiB: Math.round((h.total_heap_size_executable ?? 0) / 2 ** 20),
      spacesUsedMiB: spaces
    }))
  }, Number(process.env.MEMORY_REPORT_MS ?? 5000)).unref()
}
