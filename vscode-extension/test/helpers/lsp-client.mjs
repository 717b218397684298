// A minimal LSP client over stdio for tests: Content-Length framing, requests with
// timeouts, and answers to the server's own requests (progress creation, configuration).
import { spawn } from "node:child_process";

export class LspClient {
  static async start(command, args, { cwd, env, timeoutMs = 30000 } = {}) {
    const client = new LspClient(spawn(command, args, { cwd, env: env ?? process.env, stdio: ["pipe", "pipe", "pipe"] }));
    client.initializeResult = await client.request(
      "initialize",
      {
        processId: process.pid,
        rootUri: cwd ? `file://${cwd}` : null,
        capabilities: {
          window: { workDoneProgress: true },
          textDocument: { publishDiagnostics: {}, hover: { contentFormat: ["markdown", "plaintext"] } },
          workspace: { configuration: true },
        },
      },
      timeoutMs,
    );
    client.notify("initialized", {});
    return client;
  }

  constructor(child) {
    this.child = child;
    this.nextId = 1;
    this.pending = new Map();
    this.notifications = [];
    this.listeners = new Set();
    this.buffer = Buffer.alloc(0);
    this.stderr = "";
    this.exited = false;
    child.stdout.on("data", (chunk) => this.onData(chunk));
    child.stderr.on("data", (chunk) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    const fail = (why) => {
      this.exited = true;
      for (const { reject, timer } of this.pending.values()) {
        clearTimeout(timer);
        reject(new Error(`${why}; stderr: ${this.stderr.trim().split("\n").slice(-3).join(" | ")}`));
      }
      this.pending.clear();
    };
    child.on("error", (e) => fail(`cannot start the server: ${e.message}`));
    child.on("exit", (code) => fail(`the server exited (${code})`));
  }

  send(message) {
    const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }), "utf8");
    this.child.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
    this.child.stdin.write(body);
  }

  request(method, params, timeoutMs = 30000) {
    if (this.exited) {
      return Promise.reject(new Error(`the server has exited; stderr: ${this.stderr.trim()}`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, method });
      this.send({ id, method, params });
    });
  }

  notify(method, params) {
    this.send({ method, params });
  }

  /** Resolves with the first notification (already received or later) that `match` accepts. */
  waitForNotification(match, timeoutMs = 20000) {
    const found = this.notifications.find(match);
    if (found) {
      return Promise.resolve(found);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no matching notification in ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (n) => {
        if (match(n)) {
          clearTimeout(timer);
          this.listeners.delete(listener);
          resolve(n);
        }
      };
      this.listeners.add(listener);
    });
  }

  onData(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const headerEnd = this.buffer.indexOf("\r\n\r\n");
      if (headerEnd < 0) {
        return;
      }
      const m = /Content-Length: *(\d+)/i.exec(this.buffer.subarray(0, headerEnd).toString());
      const length = m ? Number(m[1]) : 0;
      if (this.buffer.length < headerEnd + 4 + length) {
        return;
      }
      const body = this.buffer.subarray(headerEnd + 4, headerEnd + 4 + length).toString("utf8");
      this.buffer = this.buffer.subarray(headerEnd + 4 + length);
      this.dispatch(JSON.parse(body));
    }
  }

  dispatch(message) {
    if (message.id !== undefined && message.method === undefined) {
      const p = this.pending.get(message.id);
      if (p) {
        this.pending.delete(message.id);
        clearTimeout(p.timer);
        if (message.error) {
          p.reject(new Error(`${p.method}: ${message.error.message}`));
        } else {
          p.resolve(message.result);
        }
      }
    } else if (message.id !== undefined) {
      // A request from the server: accept progress tokens, answer configuration with nulls.
      const result = message.method === "workspace/configuration" ? (message.params?.items ?? []).map(() => null) : null;
      this.send({ id: message.id, result });
    } else {
      this.notifications.push(message);
      [...this.listeners].forEach((l) => l(message));
    }
  }

  async close() {
    if (this.exited) {
      return;
    }
    try {
      await this.request("shutdown", null, 5000);
      this.notify("exit", null);
    } catch {
      // fall through to kill
    }
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        this.child.kill("SIGKILL");
        resolve();
      }, 3000);
      this.child.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      if (this.exited) {
        clearTimeout(t);
        resolve();
      }
    });
  }
}
