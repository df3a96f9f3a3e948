/**
 * Kafka's default partitioner (murmur2 over the key's UTF-8 bytes, as in
 * `org.apache.kafka.common.utils.Utils#murmur2` and @platformatic/kafka's `compatibilityPartitioner`),
 * so a key lands on the same partition number in process and on Kafka.
 *
 * @internal
 */

const M = 0x5bd1e995

/** murmur2 over bytes, `byteAt(i)` being the i-th byte (0-255) of `length`. */
const murmur2 = (length: number, byteAt: (i: number) => number): number => {
  let h = (0x9747b28c ^ length) | 0
  const length4 = length >>> 2
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4
    let k = byteAt(i4) | (byteAt(i4 + 1) << 8) | (byteAt(i4 + 2) << 16) | (byteAt(i4 + 3) << 24)
    k = Math.imul(k, M)
    k ^= k >>> 24
    k = Math.imul(k, M)
    h = Math.imul(h, M) ^ k
  }
  const tail = length & ~3
  const rest = length & 3
  if (rest === 3) h ^= byteAt(tail + 2) << 16
  if (rest >= 2) h ^= byteAt(tail + 1) << 8
  if (rest >= 1) {
    h ^= byteAt(tail)
    h = Math.imul(h, M)
  }
  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h
}

const encoder = new TextEncoder()

const isAscii = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

const murmur2Utf8 = (key: string): number => {
  if (isAscii(key)) return murmur2(key.length, (i) => key.charCodeAt(i)) // UTF-8 of ASCII is itself: no copy
  const bytes = encoder.encode(key)
  return murmur2(bytes.length, (i) => bytes[i]!)
}

/** `toPositive(murmur2(utf8(key))) % partitions`. */
export const partitionOf = (key: string, partitions: number): number => (murmur2Utf8(key) & 0x7fffffff) % partitions
