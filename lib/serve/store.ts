/**
 * The key store: API keys (stored as SHA-256 hashes of their tokens), each
 * with a query budget counted in images, a tier (soft probabilities or hard
 * labels) and its usage, in one SQLite file (Deno's built-in `node:sqlite`).
 *
 * Accounting is one conditional `UPDATE … SET used = used + n WHERE … AND
 * used + n <= budget`: SQLite runs it as a single write transaction, so
 * concurrent requests, in one process or in several, can never take a key
 * past its budget, and it is committed (WAL, `synchronous = FULL`, fsynced)
 * before the server computes or sends the answer, so a crash can lose no
 * accounted query: at worst it counts images whose answer never left.
 *
 * Several server processes on one host share a store by pointing `store:` at
 * the same file: WAL mode lets readers run beside the one writer, and
 * `busy_timeout` makes a writer wait for the lock instead of failing. The file
 * must be on a local file system (SQLite's WAL needs shared memory, so not NFS).
 *
 * A new store is created owner-only (mode 0600); SQLite gives its `-wal` and
 * `-shm` files the database's mode, so they are owner-only too.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { BIDI_CHAR, CONTROL_CHAR, printable } from "./printable.ts";

/** The two tiers: what a key's answers contain. */
export type Tier = "soft" | "hard";

/** A key as the store describes it (never the token itself). */
export interface KeyInfo {
  /** Public identifier, e.g. `k_3f9a0c1d2e4b`. */
  id: string;
  /** Free-form label given at creation. */
  name: string;
  /** `soft` (probabilities) or `hard` (top-1 labels). */
  tier: Tier;
  /** Images the key may query in total. */
  budget: number;
  /** Images queried so far. */
  used: number;
  /** ISO time of creation. */
  created: string;
  /** ISO time of revocation, or null while active. */
  revoked: string | null;
}

/** The outcome of {@linkcode KeyStore.charge}. */
export type ChargeResult =
  | { ok: true; key: KeyInfo }
  | { ok: false; reason: "unknown" }
  | { ok: false; reason: "revoked"; key: KeyInfo }
  | { ok: false; reason: "budget"; key: KeyInfo };

/** Raised for a store that cannot be used, or a bad key operation; names the fault. */
export class StoreError extends Error {
  /** @param message what is wrong */
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}

/** How {@linkcode KeyStore.revoke} looks a key up: by id, by name, or by id first and then by name. */
export type KeyRef = "id" | "name" | "auto";

/** The shape of a key id. */
const KEY_ID = /^k_[0-9a-f]{12}$/;

/** Longest key name, in UTF-16 code units. */
export const MAX_NAME_LENGTH = 200;

/**
 * Why `name` cannot name a key, or undefined when it can: names are printed
 * on terminals and matched by `revoke`, so control characters, bidirectional
 * formatting characters and id-shaped names are refused.
 */
export function keyNameProblem(name: string): string | undefined {
  if (CONTROL_CHAR.test(name)) return "contains a control character";
  if (BIDI_CHAR.test(name)) return "contains a bidirectional formatting character";
  if (KEY_ID.test(name)) return "looks like a key id (k_ and 12 hex digits)";
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  return undefined;
}

/** A name or id quoted and escaped for messages. */
function quoted(s: string): string {
  return `"${printable(s)}"`;
}

/** SHA-256 hex of a token: what the store keeps instead of the token. */
export async function hashToken(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function newToken(): string {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const b64 = btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  return `meco_${b64}`;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS api_keys (
  id      TEXT PRIMARY KEY,
  hash    TEXT NOT NULL UNIQUE,
  name    TEXT NOT NULL,
  tier    TEXT NOT NULL CHECK (tier IN ('soft', 'hard')),
  budget  INTEGER NOT NULL CHECK (budget >= 0),
  used    INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= budget),
  created TEXT NOT NULL,
  revoked TEXT
);`;

const COLUMNS = "id, name, tier, budget, used, created, revoked";

function toInfo(row: Record<string, unknown>): KeyInfo {
  return {
    id: String(row.id),
    name: String(row.name),
    tier: row.tier as Tier,
    budget: Number(row.budget),
    used: Number(row.used),
    created: String(row.created),
    revoked: row.revoked === null ? null : String(row.revoked),
  };
}

/**
 * An open key store. Synchronous SQLite calls, each short; create one per
 * process and {@linkcode KeyStore.close} it at exit.
 *
 * @example
 * ```ts ignore
 * const store = KeyStore.open("serve.db");
 * const { token } = await store.create({ name: "alice", tier: "soft", budget: 10_000 });
 * const r = await store.charge(token, 16); // r.ok: 16 images accounted, durably
 * ```
 */
export class KeyStore {
  readonly #db: DatabaseSync;
  readonly #charge: StatementSync;
  readonly #refund: StatementSync;
  readonly #byHash: StatementSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#charge = db.prepare(
      "UPDATE api_keys SET used = used + ?1 WHERE hash = ?2 AND revoked IS NULL AND used + ?1 <= budget " +
        `RETURNING ${COLUMNS}`,
    );
    this.#refund = db.prepare("UPDATE api_keys SET used = max(used - ?1, 0) WHERE hash = ?2");
    this.#byHash = db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE hash = ?`);
  }

  /**
   * Opens the store at `path`. When it does not exist it is created,
   * owner-only, unless `opts.create` is false: then that is a {@linkcode StoreError}.
   */
  static open(path: string, opts: { create?: boolean } = {}): KeyStore {
    const create = opts.create ?? true;
    try {
      // Made here, empty and owner-only, so that SQLite (which copies the database's mode to -wal and -shm) never
      // creates it with the default mode.
      if (create) Deno.openSync(path, { createNew: true, write: true, mode: 0o600 }).close();
      else Deno.statSync(path);
    } catch (e) {
      if (!create && e instanceof Deno.errors.NotFound) throw new StoreError(`key store ${path} does not exist`);
      if (!(e instanceof Deno.errors.AlreadyExists)) {
        throw new StoreError(`key store ${path}: cannot open (${e instanceof Error ? e.message : e})`);
      }
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
    } catch (e) {
      throw new StoreError(`key store ${path}: cannot open (${e instanceof Error ? e.message : e})`);
    }
    try {
      db.exec("PRAGMA busy_timeout = 10000");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      db.exec(SCHEMA);
    } catch (e) {
      db.close();
      throw new StoreError(`key store ${path}: not a usable SQLite store (${e instanceof Error ? e.message : e})`);
    }
    return new KeyStore(db);
  }

  /**
   * Creates a key; returns its token (shown once: only its hash is stored) and its description.
   *
   * @throws {StoreError} for a budget that is not a non-negative safe integer, an unknown tier, or a name
   * {@linkcode keyNameProblem} refuses
   */
  async create(opts: { name?: string; tier: Tier; budget: number }): Promise<{ token: string; key: KeyInfo }> {
    if (!Number.isSafeInteger(opts.budget) || opts.budget < 0) {
      throw new StoreError(`budget must be a non-negative integer (images), got ${opts.budget}`);
    }
    if (opts.tier !== "soft" && opts.tier !== "hard") {
      throw new StoreError(`tier must be "soft" or "hard", got ${JSON.stringify(opts.tier)}`);
    }
    const name = opts.name ?? "";
    const problem = keyNameProblem(name);
    if (problem !== undefined) throw new StoreError(`key name ${quoted(name)} ${problem}`);
    const token = newToken();
    const id = `k_${randomHex(6)}`;
    const created = new Date().toISOString();
    this.#db.prepare("INSERT INTO api_keys (id, hash, name, tier, budget, used, created) VALUES (?, ?, ?, ?, ?, 0, ?)")
      .run(id, await hashToken(token), name, opts.tier, opts.budget, created);
    return {
      token,
      key: { id, name, tier: opts.tier, budget: opts.budget, used: 0, created, revoked: null },
    };
  }

  /**
   * Revokes one key and returns it (already revoked: returned unchanged).
   * `by: "auto"` (the default) takes `ref` as an id when a key has that id,
   * and otherwise as a name; ids are unique, so revoking by id is never
   * ambiguous, whatever other keys are named.
   *
   * @throws {StoreError} for an empty `ref`, no match, or a name shared by several keys (naming their ids)
   */
  revoke(ref: string, by: KeyRef = "auto"): KeyInfo {
    if (ref === "") throw new StoreError("revoke: the key id or name is empty");
    let rows: Record<string, unknown>[] = [];
    if (by !== "name") {
      rows = this.#db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`).all(ref);
      if (rows.length === 0 && by === "id") throw new StoreError(`no key with id ${quoted(ref)}`);
    }
    if (rows.length === 0) {
      rows = this.#db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE name = ? ORDER BY created, id`).all(ref);
      if (rows.length === 0) {
        throw new StoreError(by === "name" ? `no key named ${quoted(ref)}` : `no key with id or name ${quoted(ref)}`);
      }
      if (rows.length > 1) {
        throw new StoreError(
          `${rows.length} keys are named ${quoted(ref)}; revoke one by its id: ${rows.map((r) => r.id).join(", ")}`,
        );
      }
    }
    const key = toInfo(rows[0]);
    if (key.revoked !== null) return key;
    const revoked = new Date().toISOString();
    this.#db.prepare("UPDATE api_keys SET revoked = ? WHERE id = ?").run(revoked, key.id);
    return { ...key, revoked };
  }

  /** Every key, oldest first. */
  list(): KeyInfo[] {
    return this.#db.prepare(`SELECT ${COLUMNS} FROM api_keys ORDER BY created, id`).all().map(toInfo);
  }

  /** The key a token belongs to, or undefined. */
  async lookup(token: string): Promise<KeyInfo | undefined> {
    const row = this.#byHash.get(await hashToken(token));
    return row === undefined ? undefined : toInfo(row);
  }

  /**
   * Accounts `n` images to the key of `token`, atomically and durably, if it
   * exists, is not revoked and has `n` images of budget left; otherwise
   * accounts nothing and says why.
   */
  async charge(token: string, n: number): Promise<ChargeResult> {
    if (!Number.isSafeInteger(n) || n < 1) throw new StoreError(`charge: n must be a positive integer, got ${n}`);
    const hash = await hashToken(token);
    const row = this.#charge.get(n, hash);
    if (row !== undefined) return { ok: true, key: toInfo(row) };
    const now = this.#byHash.get(hash);
    if (now === undefined) return { ok: false, reason: "unknown" };
    const key = toInfo(now);
    return key.revoked !== null ? { ok: false, reason: "revoked", key } : { ok: false, reason: "budget", key };
  }

  /** Gives back `n` images charged for a request the server then failed to answer. */
  async refund(token: string, n: number): Promise<void> {
    this.#refund.run(n, await hashToken(token));
  }

  /** Closes the database. */
  close(): void {
    this.#db.close();
  }
}
