// Module images by content hash, shared by all sessions of the server, so that a client loading a module
// the server has seen sends only its hash (MODULE_LOAD with empty bulk). Least recently used images go
// first once the byte budget is exceeded.
//
// A client could claim a hash that is not its image's and so poison other sessions' loads. The server
// therefore computes the SHA-256 of every image it is sent: a hash given as 64 hex digits (optionally
// "sha256:"-prefixed) must match it, and any other hash format is cached per session only.
import { createHash } from 'node:crypto';

export interface CachedImage {
  image: Buffer;
  kind: string;
}

const SHA256_HEX = /^(?:sha256:)?([0-9a-f]{64})$/i;

export class HashMismatchError extends Error {
  readonly code = 'RGPU_ERR_HASH_MISMATCH';
  constructor(claimed: string, actual: string) {
    super(`module hash ${claimed} does not match the image (sha256 ${actual})`);
    this.name = 'HashMismatchError';
  }
}

export class ModuleCache {
  private readonly entries = new Map<string, CachedImage>();
  private bytes = 0;

  constructor(private readonly maxBytes = 256 * 2 ** 20) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cache key of a client's hash: the verified sha256 digest, or a session-scoped key otherwise. */
  static key(hash: string, sessionId: string): string {
    const m = SHA256_HEX.exec(hash);
    return m ? `sha256:${m[1].toLowerCase()}` : `${sessionId}:${hash}`;
  }

  get(hash: string, sessionId: string): CachedImage | undefined {
    const k = ModuleCache.key(hash, sessionId);
    const e = this.entries.get(k);
    if (e) {
      // Re-insert: Map order is the LRU order.
      this.entries.delete(k);
      this.entries.set(k, e);
    }
    return e;
  }

  /** Stores a copy of the image; throws HashMismatchError when a sha256 hash does not match it. */
  put(hash: string, sessionId: string, image: Uint8Array, kind: string): CachedImage {
    const k = ModuleCache.key(hash, sessionId);
    if (k.startsWith('sha256:')) {
      const actual = createHash('sha256').update(image).digest('hex');
      if (actual !== k.slice(7)) throw new HashMismatchError(hash, actual);
    }
    const old = this.entries.get(k);
    if (old) {
      this.entries.delete(k);
      this.bytes -= old.image.length;
    }
    const e = { image: Buffer.from(image), kind };
    if (e.image.length > this.maxBytes) return e;
    this.entries.set(k, e);
    this.bytes += e.image.length;
    for (const [key, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(key);
      this.bytes -= v.image.length;
    }
    return e;
  }

  /** Drops the session-scoped entries of a session that ended. */
  dropSession(sessionId: string): void {
    const prefix = `${sessionId}:`;
    for (const [k, v] of this.entries) {
      if (k.startsWith(prefix)) {
        this.entries.delete(k);
        this.bytes -= v.image.length;
      }
    }
  }
}
