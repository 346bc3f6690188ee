// Test harness for the elevated helper: plays the extension's side by hand (private folder,
// one-time secret file, listening socket), starts a real helper process (out/imaging/cli.js
// helper ...) and gives raw access to the channel (frames of JSON-RPC messages, protocol/rpc.ts),
// so tests can send what a real extension never would. Not a test file itself (no .test.ts).
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { encodeFrame, FrameDecoder } from '../../../imaging/helper/framing';
import { macFor, newNonce, newSecret } from '../../../imaging/helper/auth';
import { PROTOCOL_VERSION } from '../../../imaging/protocol';
import { ENGINE_ENV, ENGINE_NODE_ARGS } from '../../../imaging/runtime';
import { acceptAuthenticatedPeer } from '../../../extension/helperClient';

export const CLI = path.join(__dirname, '..', '..', '..', 'imaging', 'cli.js');

/**
 * A message as the helper sent it (a JSON-RPC response or notification): decoded JSON, not
 * validated, since the tests check the helper's answers field by field, also to malformed and
 * hostile requests (and frame problems are recorded among them). `call` returns an Outcome instead.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- unvalidated wire data whose fields each test asserts
export type WireMessage = any;

export interface LaunchOptions {
  /** 'correct' (default): full handshake; 'wrong-secret': the extension side uses another secret; 'none': accept the connection, say nothing. */
  handshake?: 'correct' | 'wrong-secret' | 'none';
  /** Change the folder / files before the helper starts (modes, owners). */
  prepare?: (p: { dir: string; secretFile: string; socketPath: string }) => void;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  uid?: number;
  idleSeconds?: number;
}

export interface HelperRun {
  dir: string;
  secretFile: string;
  socketPath: string;
  helper: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** The extension side of the connection (after the handshake; for 'none'/'wrong-secret' the raw socket). */
  sock: net.Socket | null;
  messages: WireMessage[];
  send(msg: unknown): void;
  sendRaw(buf: Buffer): void;
  /** Resolves with the first message (already received or to come) matching `pred`. */
  next(pred: (m: WireMessage) => boolean, timeoutMs?: number): Promise<WireMessage>;
  /** Sends a request of `method` (an operation's name, or RPC_SHUTDOWN) with progress and log lines under the token `id`. */
  request(method: string, params?: Record<string, unknown>, id?: string): string;
  /** Resolves with how the request `id` ended. */
  outcome(id: string): Promise<Outcome>;
  /** request() and outcome(). */
  call(method: string, params?: Record<string, unknown>, id?: string): Promise<Outcome>;
  /** Asks the helper to stop the request `id` at a safe point ($/cancelRequest). */
  cancel(id: string): void;
  close(): Promise<void>;
}

/** How a request ended: its result, or the engine's error (ErrorInfo) with the JSON-RPC error's code. */
export interface Outcome {
  id: string;
  type: 'result' | 'error';
  result?: WireMessage;
  error?: WireMessage;
  rpcCode?: number;
}

let seq = 0;

export async function launchHelper(o: LaunchOptions = {}): Promise<HelperRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-helpertest-'));
  const secret = newSecret();
  const secretFile = path.join(dir, 'secret');
  fs.writeFileSync(secretFile, secret + '\n', { mode: 0o600 });
  const socketPath = path.join(dir, 'helper.sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(socketPath, r));
  fs.chmodSync(socketPath, 0o600);
  o.prepare?.({ dir, secretFile, socketPath });

  const handshake = o.handshake ?? 'correct';
  const accepted: Promise<net.Socket> =
    handshake === 'correct'
      ? acceptAuthenticatedPeer(server, secret).then((r) => r.framed.socket as net.Socket)
      : new Promise((resolve) =>
          server.once('connection', (sock) => {
            if (handshake === 'wrong-secret') {
              const nonce = newNonce();
              const dec = new FrameDecoder(
                (m: WireMessage) => {
                  if (m.type !== 'hello') return;
                  sock.write(
                    Buffer.concat([
                      encodeFrame({ v: PROTOCOL_VERSION, type: 'challenge', nonce, mac: macFor('extension', newSecret(), m.nonce, nonce) }),
                      // A request right behind it, as if the handshake had worked: must never run.
                      encodeFrame({ jsonrpc: '2.0', id: 'w1', method: 'snapshot', params: { params: { repo: path.join(dir, 'never'), source: '/dev/zero' } } }),
                    ]),
                  );
                },
                () => undefined,
              );
              sock.on('data', (d: Buffer) => dec.push(d));
            }
            sock.on('error', () => undefined);
            resolve(sock);
          }),
        );

  const helper = spawn(
    process.execPath,
    [...ENGINE_NODE_ARGS, CLI, 'helper', '--socket', socketPath, '--secret-file', secretFile, '--uid', String(o.uid ?? 0), '--idle-timeout', String(o.idleSeconds ?? 60), ...(o.args ?? [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...ENGINE_ENV, PKEXEC_UID: undefined, SUDO_UID: undefined, ...o.env },
    },
  );
  let stderr = '';
  helper.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  helper.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => helper.on('close', (code, signal) => resolve({ code, signal })));

  const sock = await Promise.race([accepted, exited.then(() => null), new Promise<null>((r) => setTimeout(() => r(null), 15000))]);
  const messages: WireMessage[] = [];
  const waiters: { pred: (m: WireMessage) => boolean; resolve: (m: WireMessage) => void }[] = [];
  if (sock && handshake === 'correct') {
    const dec = new FrameDecoder(
      (m) => {
        messages.push(m);
        for (const w of [...waiters])
          if (w.pred(m)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(m);
          }
      },
      (p) => messages.push({ frameProblem: p }),
    );
    sock.on('data', (d: Buffer) => dec.push(d));
  }
  const run: HelperRun = {
    dir,
    secretFile,
    socketPath,
    helper,
    exited,
    sock,
    messages,
    stderr: () => stderr,
    send: (msg) => sock?.write(encodeFrame(msg)),
    sendRaw: (buf) => sock?.write(buf),
    next(pred, timeoutMs = 20000) {
      const have = messages.find(pred);
      if (have) return Promise.resolve(have);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (m: WireMessage) => {
            clearTimeout(t);
            resolve(m);
          },
        };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages).slice(0, 2000)}; stderr: ${stderr}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    request(method, params = {}, id = `t${++seq}`) {
      run.send({ jsonrpc: '2.0', id, method, params: { params, progressToken: id } });
      return id;
    },
    async outcome(id) {
      const m = await run.next((x) => x.id === id && ('result' in x || 'error' in x));
      return 'result' in m ? { id, type: 'result', result: m.result } : { id, type: 'error', error: m.error.data ?? m.error, rpcCode: m.error.code };
    },
    call(method, params, id) {
      return run.outcome(run.request(method, params, id));
    },
    cancel(id) {
      run.send({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id } });
    },
    async close() {
      sock?.destroy();
      server.close();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (helper.exitCode === null && helper.signalCode === null) helper.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return run;
}

/** A helper serving `uid` (not root): the private folder, secret and socket are that user's, as the extension run by them makes them. */
export function launchHelperFor(uid: number, o: Omit<LaunchOptions, 'uid' | 'prepare'> = {}): Promise<HelperRun> {
  return launchHelper({
    ...o,
    uid,
    prepare: (p) => {
      fs.chownSync(p.dir, uid, uid);
      fs.chownSync(p.secretFile, uid, uid);
      fs.chownSync(p.socketPath, uid, uid);
    },
  });
}

const createdUsers = new Set<string>();

/** Creates the system user `name` unless it exists; returns its uid. */
export function ensureUser(name: string): number {
  let r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  if (r.status !== 0) {
    const add = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { encoding: 'utf8' });
    if (add.status !== 0 && !/already exists/.test(add.stderr)) throw new Error(`useradd ${name} failed: ${add.stderr}`);
    if (add.status === 0) createdUsers.add(name);
    r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  }
  return Number(r.stdout.trim());
}

/** Removes the users ensureUser created in this process (those that existed before are left). */
export function removeCreatedUsers(): void {
  for (const name of createdUsers) spawnSync('userdel', [name]);
  createdUsers.clear();
}
