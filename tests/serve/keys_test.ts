/**
 * The key store and `deno task keys` against careless and hostile input:
 * revoking by id is never ambiguous, empty references and unprintable names
 * are refused, stores are created owner-only, a mistyped `--store` is not
 * silently created, and `--budget` takes plain decimal integers only.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { repoPath } from "../../lib/experiments/paths.ts";
import { KeyStore, StoreError } from "../../lib/serve/store.ts";

async function tempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "meco-keys-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Renames a key behind the store's back, as an older store (or a hand edit) may hold it. */
function rename(path: string, id: string, name: string): void {
  const db = new DatabaseSync(path);
  try {
    db.prepare("UPDATE api_keys SET name = ? WHERE id = ?").run(name, id);
  } finally {
    db.close();
  }
}

async function keys(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", repoPath("lib/serve/keys_cli.ts"), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("key store: revoking by id wins over a key named after that id, and a key with a shared name is revocable by id", async () => {
  await tempDir(async (dir) => {
    const path = `${dir}/k.db`;
    const store = KeyStore.open(path);
    try {
      const { key: a } = await store.create({ name: "a", tier: "soft", budget: 1 });
      const { key: impostor } = await store.create({ name: "x", tier: "soft", budget: 1 });
      const { key: t1 } = await store.create({ name: "twin", tier: "soft", budget: 1 });
      const { key: t2 } = await store.create({ name: "twin", tier: "soft", budget: 1 });
      rename(path, impostor.id, a.id);
      rename(path, t2.id, t1.id);
      assert.equal(store.revoke(a.id).id, a.id, "the id wins over a name equal to it");
      assert.equal(store.list().find((k) => k.id === impostor.id)?.revoked, null);
      // t1's id is also t2's name, and t1's name is shared: its id still revokes exactly t1.
      assert.equal(store.revoke(t1.id).id, t1.id);
      assert.equal(store.list().find((k) => k.id === t2.id)?.revoked, null);
      // Explicitly by name: the impostor, named after a's id.
      assert.equal(store.revoke(a.id, "name").id, impostor.id);
      assert.throws(() => store.revoke(t2.id, "name"), /no key named/);
      assert.equal(store.revoke(t2.id, "id").id, t2.id);
      await store.create({ name: "pair", tier: "soft", budget: 1 });
      await store.create({ name: "pair", tier: "soft", budget: 1 });
      assert.throws(() => store.revoke("pair"), /2 keys are named "pair"; revoke one by its id: k_/);
    } finally {
      store.close();
    }
  });
});

Deno.test("key store: an empty reference revokes nothing; unprintable or id-shaped names are refused", async () => {
  await tempDir(async (dir) => {
    const store = KeyStore.open(`${dir}/k.db`);
    try {
      const { key: unnamed } = await store.create({ tier: "soft", budget: 1 });
      assert.throws(() => store.revoke(""), StoreError);
      assert.equal(store.list()[0].revoked, null, `${unnamed.id} is still active`);
      for (
        const name of [
          "evil\u001b[2J",
          "line\nbreak",
          "tab\there",
          "\u202etxt.exe",
          "a\u2066b",
          "del\u007f",
          "c1\u0085",
        ]
      ) {
        await assert.rejects(store.create({ name, tier: "soft", budget: 1 }), /control character|bidirectional/);
      }
      await assert.rejects(store.create({ name: "k_0123456789ab", tier: "soft", budget: 1 }), /looks like a key id/);
      assert.equal(store.list().length, 1);
      assert.equal((await store.create({ name: "Zoë (ops) ✓", tier: "soft", budget: 1 })).key.name, "Zoë (ops) ✓");
    } finally {
      store.close();
    }
  });
});

Deno.test("key store: keys.db and its -wal and -shm files are created owner-only", async () => {
  await tempDir(async (dir) => {
    const old = Deno.umask(0o022);
    try {
      const path = `${dir}/k.db`;
      const store = KeyStore.open(path);
      try {
        await store.create({ name: "a", tier: "soft", budget: 5 });
        await store.charge((await store.create({ name: "b", tier: "soft", budget: 5 })).token, 1);
        for (const f of [path, `${path}-wal`, `${path}-shm`]) {
          const mode = Deno.statSync(f).mode! & 0o777;
          assert.equal(mode, 0o600, `${f}: mode ${mode.toString(8)}`);
        }
      } finally {
        store.close();
      }
    } finally {
      Deno.umask(old);
    }
  });
});

Deno.test("keys CLI: a --store that does not exist is an error unless --create; then it is owner-only", async () => {
  await tempDir(async (dir) => {
    const path = `${dir}/typo.db`;
    for (const args of [["list"], ["revoke", "k_0123456789ab"], ["create", "--budget", "5"]]) {
      const r = await keys([...args, "--store", path]);
      assert.notEqual(r.code, 0, `${args[0]}: ${r.stdout}`);
      assert.match(r.stderr, /typo\.db.*does not exist.*--create/s, args[0]);
      assert.throws(() => Deno.statSync(path), Deno.errors.NotFound, `${args[0]} created the store`);
    }
    const made = await keys(["create", "--store", path, "--create", "--budget", "5", "--json"]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(JSON.parse(made.stdout).key.budget, 5);
    assert.equal(Deno.statSync(path).mode! & 0o077, 0);
    const listed = await keys(["list", "--store", path, "--json"]);
    assert.equal(JSON.parse(listed.stdout).length, 1, listed.stderr);
  });
});

Deno.test("keys CLI: --budget takes plain non-negative decimal integers only; revoke '' is an error", async () => {
  await tempDir(async (dir) => {
    const path = `${dir}/k.db`;
    const ok = await keys(["create", "--store", path, "--create", "--budget", "10_000", "--json"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).key.budget, 10_000);
    for (const bad of ["", "0x32", "1e3", "-5", "1.5", " 7", "7 ", "+3", "Infinity", "9007199254740993", "1__0"]) {
      const r = await keys(["create", "--store", path, `--budget=${bad}`]);
      assert.equal(r.code, 2, `--budget ${JSON.stringify(bad)} was accepted: ${r.stdout}`);
      assert.match(r.stderr, /--budget: expected an integer ≥ 0/, JSON.stringify(bad));
    }
    const r = await keys(["revoke", "--store", path, ""]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /empty/);
    const listed = JSON.parse((await keys(["list", "--store", path, "--json"])).stdout);
    assert.equal(listed.length, 1, "no key was made by a refused --budget");
    assert.equal(listed[0].revoked, null);
  });
});

Deno.test("keys CLI: unprintable names are refused at creation and escaped when printed", async () => {
  await tempDir(async (dir) => {
    const path = `${dir}/k.db`;
    const bad = await keys(["create", "--store", path, "--create", "--budget", "1", "--name", "x\u001b[31mred"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /control character/);
    const made = JSON.parse((await keys(["create", "--store", path, "--budget", "1", "--json"])).stdout);
    rename(path, made.key.id, "ok\u001b[2J\u202eevil");
    for (const args of [["list"], ["list", "--json"], ["revoke", made.key.id], ["revoke", made.key.id, "--json"]]) {
      const r = await keys([...args, "--store", path]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        !r.stdout.includes("\u001b") && !r.stdout.includes("\u202e"),
        `${args.join(" ")} printed the name raw: ${JSON.stringify(r.stdout)}`,
      );
      assert.match(r.stdout, /ok\\u(001b|001B)\[2J\\u(202e|202E)evil/, args.join(" "));
    }
  });
});

Deno.test("keys CLI: revoke by --id, by --name, or by a reference where ids win", async () => {
  await tempDir(async (dir) => {
    const path = `${dir}/k.db`;
    const make = async (name: string) =>
      JSON.parse(
        (await keys(["create", "--store", path, "--create", "--budget", "1", "--name", name, "--json"])).stdout,
      )
        .key.id as string;
    const a = await make("a"), b = await make("b"), c = await make("c");
    rename(path, b, a);
    const byRef = await keys(["revoke", "--store", path, a, "--json"]);
    assert.equal(JSON.parse(byRef.stdout).id, a, byRef.stderr);
    const byName = await keys(["revoke", "--store", path, "--name", a, "--json"]);
    assert.equal(JSON.parse(byName.stdout).id, b, byName.stderr);
    const byId = await keys(["revoke", "--store", path, "--id", c, "--json"]);
    assert.equal(JSON.parse(byId.stdout).id, c, byId.stderr);
    const both = await keys(["revoke", "--store", path, "--id", c, "--name", "c"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /one of/);
  });
});
