/**
 * Running a server as a child process (`lib/serve/main.ts`), as the load test
 * and the tests do: start it, wait for its `listening on <url>` line, and
 * stop it (SIGTERM) or kill it (SIGKILL).
 *
 * @module
 */
import { repoPath } from "../experiments/paths.ts";

/** A server child process. */
export interface ServerProcess {
  /** Its address, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The child. */
  child: Deno.ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Starts `deno run -A lib/serve/main.ts --config <config> [args]` and resolves
 * once it listens; rejects with its output if it exits first or does not
 * listen within `timeoutMs`.
 *
 * @example
 * ```ts ignore
 * const srv = await spawnServer("configs/serve.yaml", ["--port", "0"]);
 * await fetch(`${srv.url}/healthz`);
 * await srv.stop();
 * ```
 */
export async function spawnServer(
  config: string,
  args: string[] = [],
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", repoPath("lib/serve/main.ts"), "--config", config, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: opts.env,
  }).spawn();
  let text = "";
  const listening = Promise.withResolvers<string>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      text += dec.decode(chunk, { stream: true });
      const m = /listening on (http:\/\/\S+)/.exec(text);
      if (m) listening.resolve(m[1]);
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status;
  status.then((s) => listening.reject(new Error(`server exited (code ${s.code}) before listening:\n${text}`)));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const timer = setTimeout(
    () => listening.reject(new Error(`server did not listen within ${timeoutMs} ms:\n${text}`)),
    timeoutMs,
  );
  let url: string;
  try {
    url = await listening.promise;
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await status;
    await pumps;
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return {
    url,
    child,
    output: () => text,
    stop: async (signal: Deno.Signal = "SIGTERM") => {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
      const s = await status;
      await pumps;
      return s;
    },
  };
}
