// The extension's side of the elevated helper's channel (imaging/helper/README.md): a private folder
// with a Unix socket the extension listens on and a one-time secret file, the helper launched through
// the elevation method (extension/elevation.ts), the mutual HMAC handshake, then typed requests with
// progress, cancellation by request id, and a clear error with the helper's last words when it dies.
//
// No `vscode` import: the unit tests run this under plain node.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { encodeFrame, FrameDecoder } from '../imaging/helper/framing';
import { macEquals, macFor, newNonce, newSecret } from '../imaging/helper/auth';
import { ErrorCode, HelperEvent, HelperOpName, HelperOps, PROTOCOL_VERSION } from '../imaging/protocol';
import { askpassScript, buildLaunch, ElevationMethod, LaunchCommand } from './elevation';
import type { CancellationLike, ProgressListener } from './engine';
import { EngineError } from './engine';

export interface HelperClientOptions {
  cliPath: string;
  nodePath: string;
  method: ElevationMethod;
  idleTimeoutSeconds?: number;
  log?: (line: string) => void;
  /** Asks the user for their password (sudo's askpass). */
  askPassword?: (prompt: string) => Promise<string | undefined>;
  /** How long the helper may take to connect: default 20 s, 3 min when a prompt shows. */
  connectTimeoutMs?: number;
  /** The uid the helper works for (default: ours). */
  uid?: number;
}

interface Pending {
  type: string;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  onProgress?: ProgressListener;
}

const TAIL = 20;

/**
 * The extension's side of the handshake (protocol.ts): waits for the first peer on `server` that
 * proves it knows the secret, answers it 'ready' and stops listening. A peer that does not (a
 * process that found the socket, a wrong secret, a malformed frame, silence for 10 s) is dropped
 * without being told anything beyond our challenge.
 */
export function acceptAuthenticatedPeer(server: net.Server, secret: string, log: (line: string) => void = () => undefined): Promise<{ sock: net.Socket; pid: number | undefined }> {
  return new Promise((resolve) => {
    let done = false;
    server.on('connection', (sock) => {
      if (done) return void sock.destroy();
      const nonce = newNonce();
      let peerNonce = '';
      let pid: number | undefined;
      const timer = setTimeout(() => drop('no authentication within 10 s'), 10000);
      const drop = (why: string) => {
        log(`Refused a connection to the helper socket: ${why}`);
        clearTimeout(timer);
        sock.destroy();
      };
      const decoder = new FrameDecoder(
        (m) => {
          if (done) return drop('a helper is already connected');
          const o = (m && typeof m === 'object' ? m : {}) as Record<string, unknown>;
          if (o.v !== PROTOCOL_VERSION) return drop(`protocol version ${JSON.stringify(o.v)}`);
          if (!peerNonce) {
            if (o.type !== 'hello' || typeof o.nonce !== 'string' || !/^[0-9a-f]{64}$/.test(o.nonce)) return drop('it did not start with hello');
            peerNonce = o.nonce;
            if (typeof o.pid === 'number') pid = o.pid;
            sock.write(encodeFrame({ v: PROTOCOL_VERSION, type: 'challenge', nonce, mac: macFor('extension', secret, peerNonce, nonce) }));
            return;
          }
          if (o.type !== 'auth' || !macEquals(o.mac, macFor('helper', secret, nonce, peerNonce))) return drop('authentication failed');
          done = true;
          clearTimeout(timer);
          sock.removeAllListeners('data');
          sock.write(encodeFrame({ v: PROTOCOL_VERSION, type: 'ready' }));
          server.close();
          resolve({ sock, pid });
        },
        (p) => drop(`${p.kind} frame during the handshake`),
      );
      sock.on('data', (d: Buffer) => decoder.push(d));
      sock.on('error', () => undefined);
    });
  });
}

/** Where the private folder goes: $XDG_RUNTIME_DIR (per-user, tmpfs) when usable, else the temp dir. */
function runtimeBase(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  try {
    if (xdg && fs.statSync(xdg).isDirectory() && fs.statSync(xdg).uid === process.getuid?.()) return xdg;
  } catch {
    /* fall back */
  }
  return os.tmpdir();
}

export class HelperClient {
  private dir = '';
  private socketPath = '';
  private server: net.Server | null = null;
  private askpassServer: net.Server | null = null;
  private child: ChildProcess | null = null;
  private conn: net.Socket | null = null;
  private readonly pending = new Map<string, Pending>();
  private readonly tail: string[] = [];
  private seq = 0;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private exited: Promise<void> = Promise.resolve();
  private lost = false;
  private disposing = false;
  private byeReason: string | null = null;
  /** The helper's process id (from its hello). */
  helperPid: number | undefined;
  /**
   * Called once when the channel closes: `crash` is an error when it was not a normal exit;
   * `failedRequests` tells how many running requests were rejected with it (and so reported).
   */
  onClose: ((crash: EngineError | null, failedRequests: number) => void) | undefined;

  private constructor(private readonly opts: HelperClientOptions) {}

  private log(line: string): void {
    this.opts.log?.(line);
  }

  /** Starts a helper and resolves once it is connected and authenticated. */
  static async start(opts: HelperClientOptions): Promise<HelperClient> {
    const c = new HelperClient(opts);
    try {
      await c.launch();
    } catch (err) {
      c.cleanup();
      throw err;
    }
    return c;
  }

  get alive(): boolean {
    return !this.lost && !!this.conn;
  }

  /** The last lines the helper wrote on stderr. */
  get stderrTail(): readonly string[] {
    return this.tail;
  }

  private async launch(): Promise<void> {
    const uid = this.opts.uid ?? process.getuid?.() ?? 0;
    this.dir = fs.mkdtempSync(path.join(runtimeBase(), 'devsnap-helper-'));
    fs.chmodSync(this.dir, 0o700);
    const secret = newSecret();
    const secretFile = path.join(this.dir, 'secret');
    fs.writeFileSync(secretFile, secret + '\n', { mode: 0o600, flag: 'wx' });
    // Windows: a named pipe (not exercised end to end yet, see imaging/helper/README.md).
    this.socketPath = process.platform === 'win32' ? `\\\\.\\pipe\\devsnap-helper-${path.basename(this.dir).replace(/[^\w-]/g, '')}` : path.join(this.dir, 'helper.sock');
    const server = net.createServer();
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    if (process.platform !== 'win32') fs.chmodSync(this.socketPath, 0o600);

    let askpass: string | undefined;
    if (this.opts.method === 'sudo') askpass = await this.startAskpass();
    const cmd: LaunchCommand = buildLaunch(
      this.opts.method,
      {
        nodePath: this.opts.nodePath,
        cliPath: this.opts.cliPath,
        socket: this.socketPath,
        secretFile,
        uid,
        idleTimeoutSeconds: this.opts.idleTimeoutSeconds ?? 600,
      },
      { askpass },
    );
    this.log(`Starting the devsnap helper (${cmd.method}${cmd.prompts ? ', asks for a password' : ''}): ${cmd.command} ${cmd.args.join(' ')}`);

    const connected = acceptAuthenticatedPeer(server, secret, (m) => this.log(m)).then(({ sock, pid }) => {
      this.helperPid = pid;
      if (process.platform !== 'win32') fs.rmSync(this.socketPath, { force: true }); // nobody else may connect now
      return sock;
    });
    const child = spawn(cmd.command, cmd.args, { env: { ...process.env, ...cmd.env }, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    this.child = child;
    let buf = '';
    const onText = (d: string) => {
      buf += d;
      const lines = buf.split(/\r?\n/);
      buf = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) this.addTail(l);
    };
    child.stdout?.setEncoding('utf8').on('data', onText);
    child.stderr?.setEncoding('utf8').on('data', onText);
    this.exited = new Promise<void>((resolve) => {
      child.on('close', (code, signal) => {
        if (buf.trim()) this.addTail(buf);
        buf = '';
        this.exitInfo = { code, signal };
        this.log(`devsnap helper launcher exited (${code ?? signal})`);
        resolve();
      });
      child.on('error', (err) => {
        this.addTail(`could not start ${cmd.command}: ${err.message}`);
        this.exitInfo = { code: null, signal: null };
        resolve();
      });
    });
    const timeoutMs = this.opts.connectTimeoutMs ?? (cmd.prompts ? 180000 : 20000);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      connected.then((sock) => ({ kind: 'ok' as const, sock })),
      this.exited.then(() => ({ kind: 'exit' as const })),
      new Promise<{ kind: 'timeout' }>((resolve) => (timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome.kind !== 'ok') {
      if (outcome.kind === 'timeout') child.kill();
      else await new Promise((r) => setTimeout(r, 50));
      throw this.startFailure(cmd, outcome.kind === 'timeout' ? timeoutMs : undefined);
    }
    this.attach(outcome.sock);
  }

  private addTail(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL) this.tail.shift();
    this.log(`  helper: ${line}`);
  }

  private tailText(n = 5): string {
    return this.tail.slice(-n).join(' | ');
  }

  private startFailure(cmd: LaunchCommand, timedOutMs?: number): EngineError {
    const said = this.tailText();
    if (timedOutMs !== undefined) {
      return new EngineError('INTERNAL', `The devsnap helper did not connect within ${Math.round(timedOutMs / 1000)} s.`, said ? `It said: ${said}` : 'See the devsnap output channel.');
    }
    const code = this.exitInfo?.code;
    if ((cmd.method === 'pkexec' && (code === 126 || code === 127)) || (cmd.method === 'sudo' && code === 1 && /password|askpass|incorrect/i.test(said))) {
      return new EngineError(
        'PERMISSION',
        'Administrator rights were not granted: the password prompt was dismissed or the password was refused.',
        'Try again, or set devsnap.elevation to "none" to work only on disks and image files your user can access.',
      );
    }
    return new EngineError('INTERNAL', `The devsnap helper exited before it connected (${code ?? this.exitInfo?.signal ?? 'unknown status'}).`, said ? `It said: ${said}` : undefined);
  }

  private attach(sock: net.Socket): void {
    this.conn = sock;
    this.log(`devsnap helper connected and authenticated (pid ${this.helperPid ?? '?'})`);
    const decoder = new FrameDecoder(
      (m) => this.onEvent(m as HelperEvent),
      (p) => this.log(`helper sent a ${p.kind} frame; ignored`),
    );
    sock.on('data', (d: Buffer) => decoder.push(d));
    sock.on('error', (err) => this.log(`helper channel error: ${err.message}`));
    sock.on('close', () => void this.onLost());
  }

  private onEvent(ev: HelperEvent): void {
    if (!ev || typeof ev !== 'object') return;
    switch (ev.type) {
      case 'progress': {
        const p = this.pending.get(ev.id);
        try {
          p?.onProgress?.(ev.event);
        } catch (err) {
          this.log(`  (progress listener failed: ${(err as Error).message})`);
        }
        return;
      }
      case 'log':
        this.log(`  helper: ${ev.message}`);
        return;
      case 'bye':
        this.byeReason = ev.reason;
        this.log(`devsnap helper is stopping: ${ev.reason}`);
        return;
      case 'result':
      case 'error': {
        if (ev.id === null || !this.pending.has(ev.id)) {
          if (ev.type === 'error') this.log(`helper error: ${ev.error.message}`);
          return;
        }
        const p = this.pending.get(ev.id)!;
        this.pending.delete(ev.id);
        if (ev.type === 'result') p.resolve(ev.result);
        else {
          const e = ev.error;
          this.log(`  error ${e.code}: ${e.message}${e.hint ? ' ' + e.hint : ''}`);
          p.reject(new EngineError(e.code as ErrorCode, e.message, e.hint));
        }
      }
    }
  }

  private async onLost(): Promise<void> {
    if (this.lost) return;
    this.lost = true;
    // Give the process a moment to exit, so its status and last words are known.
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
    const normal = this.disposing || this.byeReason !== null;
    let crash: EngineError | null = null;
    if (!normal || this.pending.size) {
      const status = this.exitInfo ? (this.exitInfo.signal ? `killed by ${this.exitInfo.signal}` : `exit code ${this.exitInfo.code}`) : 'still running';
      const said = this.tailText();
      crash = new EngineError('INTERNAL', `The devsnap helper stopped unexpectedly (${status}).`, said ? `Its last messages: ${said}` : 'It printed nothing; see the devsnap output channel.');
      this.log(`${crash.message} ${crash.hint ?? ''}`);
    }
    const failed = this.pending.size;
    for (const p of this.pending.values()) p.reject(crash ?? new EngineError('INTERNAL', 'The devsnap helper stopped.', this.byeReason ?? undefined));
    this.pending.clear();
    this.cleanup();
    this.onClose?.(normal ? null : crash, failed);
  }

  /** Sends one request; resolves with its result, rejects with an EngineError. */
  request<K extends HelperOpName>(type: K, params: HelperOps[K]['params'], onProgress?: ProgressListener, token?: CancellationLike): Promise<HelperOps[K]['result']> {
    if (!this.alive) return Promise.reject(new EngineError('INTERNAL', 'The devsnap helper is not running.'));
    if (token?.isCancellationRequested) return Promise.reject(new EngineError('CANCELLED', 'Cancelled.', 'Nothing was changed.'));
    const id = `r${++this.seq}`;
    this.log(`→ helper ${id} ${type}`);
    return new Promise((resolve, reject) => {
      const sub = token?.onCancellationRequested(() => {
        this.log(`  cancel requested: asking the helper to stop ${id} at a safe point`);
        this.send({ v: PROTOCOL_VERSION, id: `c${++this.seq}`, type: 'cancel', target: id });
      });
      this.pending.set(id, {
        type,
        onProgress,
        resolve: (v) => {
          sub?.dispose();
          resolve(v as HelperOps[K]['result']);
        },
        reject: (e) => {
          sub?.dispose();
          reject(e);
        },
      });
      this.send({ v: PROTOCOL_VERSION, id, type, ...params });
    });
  }

  private send(msg: unknown): void {
    this.conn?.write(encodeFrame(msg));
  }

  /** Asks the helper to stop (it finishes at a safe point), then closes the channel. */
  async dispose(): Promise<void> {
    if (this.disposing) return;
    this.disposing = true;
    if (this.alive) {
      this.send({ v: PROTOCOL_VERSION, id: `s${++this.seq}`, type: 'shutdown' });
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 3000))]);
      this.conn?.destroy();
    }
    this.cleanup();
  }

  private cleanup(): void {
    this.server?.close();
    this.askpassServer?.close();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** sudo's askpass: a socket in the private folder and a script that asks through it. */
  private async startAskpass(): Promise<string> {
    const sockPath = path.join(this.dir, 'askpass.sock');
    const server = net.createServer((sock) => {
      let data = '';
      sock.setEncoding('utf8');
      sock.on('data', async (d: string) => {
        data += d;
        if (!data.includes('\n')) return;
        let prompt = '';
        try {
          prompt = String(JSON.parse(data.split('\n')[0]).prompt ?? '');
        } catch {
          /* default prompt */
        }
        const pw = await this.opts.askPassword?.(prompt.trim() || 'Password for sudo (devsnap needs administrator rights to read and write disks):');
        sock.end(JSON.stringify(pw === undefined ? {} : { password: pw }));
      });
      sock.on('error', () => undefined);
    });
    this.askpassServer = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sockPath, () => resolve());
    });
    fs.chmodSync(sockPath, 0o600);
    const script = path.join(this.dir, 'askpass.sh');
    fs.writeFileSync(script, askpassScript(this.opts.nodePath, sockPath), { mode: 0o700 });
    return script;
  }
}
