// The extension's side of the elevated helper's channel (imaging/helper/README.md): a private folder
// with a Unix socket the extension listens on and a one-time secret file, the helper launched through
// the elevation method (extension/elevation.ts), the mutual HMAC handshake, then the engine's
// protocol (JSON-RPC in frames, imaging/helper/rpcFrames.ts) through the one client of both engine
// servers (engineRpc.ts), and a clear error with the helper's last words when it dies.
//
// No `vscode` import: the unit tests run this under plain node.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { createMessageConnection, MessageConnection } from 'vscode-jsonrpc/node';
import { macEquals, macFor, newNonce, newSecret } from '../imaging/helper/auth';
import { FramedSocket, FrameMessageReader, FrameMessageWriter } from '../imaging/helper/rpcFrames';
import { HelperOpName, HelperOps, PROTOCOL_VERSION, RPC_BYE, RPC_LOG, RPC_SHUTDOWN, RpcLog } from '../imaging/protocol';
import { askpassScript, buildLaunch, ElevationMethod, LaunchCommand } from './elevation';
import type { CallOptions } from './engine';
import { EngineError } from './engine';
import { callPeer } from './engineRpc';

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

const TAIL = 20;

/**
 * The extension's side of the handshake (protocol.ts): waits for the first peer on `server` that
 * proves it knows the secret, answers it 'ready' and stops listening. A peer that does not (a
 * process that found the socket, a wrong secret, a malformed frame, silence for 10 s) is dropped
 * without being told anything beyond our challenge.
 */
export function acceptAuthenticatedPeer(server: net.Server, secret: string, log: (line: string) => void = () => undefined): Promise<{ framed: FramedSocket; pid: number | undefined }> {
  return new Promise((resolve) => {
    let done = false;
    server.on('connection', (sock) => {
      if (done) return void sock.destroy();
      const framed = new FramedSocket(sock);
      const nonce = newNonce();
      let peerNonce = '';
      let pid: number | undefined;
      const timer = setTimeout(() => drop('no authentication within 10 s'), 10000);
      const drop = (why: string) => {
        log(`Refused a connection to the helper socket: ${why}`);
        clearTimeout(timer);
        sock.destroy();
      };
      framed.onMessage = (m) => {
        if (done) return drop('a helper is already connected');
        const o = (m && typeof m === 'object' ? m : {}) as Record<string, unknown>;
        if (o.v !== PROTOCOL_VERSION) return drop(`protocol version ${JSON.stringify(o.v)}`);
        if (!peerNonce) {
          if (o.type !== 'hello' || typeof o.nonce !== 'string' || !/^[0-9a-f]{64}$/.test(o.nonce)) return drop('it did not start with hello');
          peerNonce = o.nonce;
          if (typeof o.pid === 'number') pid = o.pid;
          framed.send({ v: PROTOCOL_VERSION, type: 'challenge', nonce, mac: macFor('extension', secret, peerNonce, nonce) });
          return;
        }
        if (o.type !== 'auth' || !macEquals(o.mac, macFor('helper', secret, nonce, peerNonce))) return drop('authentication failed');
        done = true;
        clearTimeout(timer);
        framed.onMessage = framed.onProblem = () => undefined; // the helper speaks only when asked, from here on in JSON-RPC
        framed.send({ v: PROTOCOL_VERSION, type: 'ready' });
        server.close();
        resolve({ framed, pid });
      };
      framed.onProblem = (p) => drop(`${p.kind} frame during the handshake`);
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
  private connection: MessageConnection | null = null;
  /** Rejects with why the channel ended: every pending call fails with it. */
  private gone: Promise<never> = new Promise(() => undefined);
  private endGone: (err: EngineError) => void = () => undefined;
  /** Calls sent and not yet answered. */
  private pending = 0;
  private readonly tail: string[] = [];
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

    const connected = acceptAuthenticatedPeer(server, secret, (m) => this.log(m)).then(({ framed, pid }) => {
      this.helperPid = pid;
      if (process.platform !== 'win32') fs.rmSync(this.socketPath, { force: true }); // nobody else may connect now
      return framed;
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
      connected.then((framed) => ({ kind: 'ok' as const, framed })),
      this.exited.then(() => ({ kind: 'exit' as const })),
      new Promise<{ kind: 'timeout' }>((resolve) => (timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome.kind !== 'ok') {
      if (outcome.kind === 'timeout') child.kill();
      else await new Promise((r) => setTimeout(r, 50));
      throw this.startFailure(cmd, outcome.kind === 'timeout' ? timeoutMs : undefined);
    }
    this.attach(outcome.framed);
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
        'Try again, or set the Elevation setting to "none" to work only on disks and image files your user can access.',
      );
    }
    return new EngineError('INTERNAL', `The devsnap helper exited before it connected (${code ?? this.exitInfo?.signal ?? 'unknown status'}).`, said ? `It said: ${said}` : undefined);
  }

  private attach(framed: FramedSocket): void {
    const sock = framed.socket as net.Socket;
    this.conn = sock;
    this.log(`devsnap helper connected and authenticated (pid ${this.helperPid ?? '?'})`);
    const reader = new FrameMessageReader(framed, 'client', (r) => this.log(`helper sent a message that was refused: ${r.message}`));
    const connection = createMessageConnection(reader, new FrameMessageWriter(framed));
    this.connection = connection;
    this.gone = new Promise<never>((_, reject) => (this.endGone = reject));
    this.gone.catch(() => undefined);
    connection.onNotification(RPC_LOG, (m: RpcLog) => this.log(`  helper: ${m.message}`));
    connection.onNotification(RPC_BYE, (m: { reason?: unknown }) => {
      this.byeReason = String(m?.reason ?? 'no reason given');
      this.log(`devsnap helper is stopping: ${this.byeReason}`);
    });
    connection.listen();
    sock.on('error', (err) => this.log(`helper channel error: ${err.message}`));
    sock.on('close', () => void this.onLost());
  }

  private async onLost(): Promise<void> {
    if (this.lost) return;
    this.lost = true;
    // Give the process a moment to exit, so its status and last words are known.
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
    const normal = this.disposing || this.byeReason !== null;
    let crash: EngineError | null = null;
    if (!normal || this.pending) {
      const status = this.exitInfo ? (this.exitInfo.signal ? `killed by ${this.exitInfo.signal}` : `exit code ${this.exitInfo.code}`) : 'still running';
      const said = this.tailText();
      crash = new EngineError('INTERNAL', `The devsnap helper stopped unexpectedly (${status}).`, said ? `Its last messages: ${said}` : 'It printed nothing; see the devsnap output channel.');
      this.log(`${crash.message} ${crash.hint ?? ''}`);
    }
    const failed = this.pending;
    this.endGone(crash ?? new EngineError('INTERNAL', 'The devsnap helper stopped.', this.byeReason ?? undefined));
    this.connection?.dispose();
    this.cleanup();
    this.onClose?.(normal ? null : crash, failed);
  }

  /** Runs one operation in the helper; resolves with its checked result, rejects with an EngineError. */
  async call<K extends HelperOpName>(op: K, params: HelperOps[K]['params'], o: CallOptions = {}): Promise<HelperOps[K]['result']> {
    if (!this.alive || !this.connection) throw new EngineError('INTERNAL', 'The devsnap helper is not running.');
    if (o.token?.isCancellationRequested) throw new EngineError('CANCELLED', 'Cancelled.', 'Nothing was changed.');
    this.pending++;
    try {
      return await callPeer({ connection: this.connection, gone: this.gone, name: 'helper', log: (line) => this.log(line) }, op, params, o);
    } finally {
      this.pending--;
    }
  }

  /** Asks the helper to stop (it finishes at a safe point), then closes the channel. */
  async dispose(): Promise<void> {
    if (this.disposing) return;
    this.disposing = true;
    if (this.alive) {
      this.connection?.sendRequest(RPC_SHUTDOWN).catch(() => undefined);
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
