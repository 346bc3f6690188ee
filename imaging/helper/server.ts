// The elevated helper: `node dist/devsnap.js helper --socket PATH --secret-file FILE [--uid UID]`,
// started by the extension (extension/helperClient.ts) through pkexec / sudo / UAC / osascript, or
// directly when the extension already runs as root. It connects to the extension's socket,
// authenticates both ways with the one-time secret, then serves the engine's operations over
// JSON-RPC (protocol/rpc.ts, protocol/helper.ts: the same dispatcher as the engine service,
// ops/serve.ts) until the extension goes away, asks it to stop, or it has been idle too long.
// Security model: README.md beside this file.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { createMessageConnection, MessageConnection } from 'vscode-jsonrpc/node';
import { EngineContext, runOp } from '../ops/registry';
import { OpServer, serveOps } from '../ops/serve';
import type { UndoContext } from '../ops/undo';
import { assertNotInUse, inspectPath } from '../disk/device';
import { PrivilegePolicy, setPrivilegePolicy } from '../disk/privilege';
import { PROTOCOL_VERSION, RPC_BYE, RPC_SHUTDOWN } from '../protocol';
import { FramedSocket, FrameMessageReader, FrameMessageWriter } from './rpcFrames';
import { macEquals, macFor, newNonce } from './auth';
import { HELPER_OP_NAMES, HelperCall, validateCall } from './validate';
import { bucketRepository, checkFileDestinations, checkSocketPath, HelperRefusal, readSecretFile, resolveDiskPath, resolveFilesTarget, resolveRepository } from './checks';
import { isS3Location } from '../storage/location';
import { runAutomation } from './auto-checks';
import { canSwitch, Identity, ROOT, userIdentity, withIdentity, withIdentitySync } from './identity';

export interface HelperCommandOptions {
  socket: string;
  secretFile: string;
  uid?: string;
  idleTimeout?: string;
}

const HANDSHAKE_TIMEOUT_MS = 15000;

const say = (msg: string) => {
  try {
    process.stderr.write(`devsnap-helper[${process.pid}]: ${msg}\n`);
  } catch {
    /* stderr gone with the client */
  }
};

function requestingUid(given: string | undefined): number {
  const fromEnv = process.env.PKEXEC_UID ?? process.env.SUDO_UID;
  const text = given ?? fromEnv ?? String(process.getuid?.() ?? 0);
  if (!/^\d+$/.test(text)) throw new DevsnapError('USAGE', `--uid must be a number, got "${text}".`);
  const uid = Number(text);
  // pkexec and sudo tell us who asked: a --uid naming someone else is refused.
  if (fromEnv !== undefined && /^\d+$/.test(fromEnv) && Number(fromEnv) !== uid) {
    throw new DevsnapError('PERMISSION', `Refused: --uid ${uid} is not the user who asked for elevation (uid ${fromEnv}).`);
  }
  return uid;
}

/** Runs the helper; resolves with the process exit code. */
export async function runHelperCommand(o: HelperCommandOptions): Promise<number> {
  process.stderr.on('error', () => undefined); // the client (our stderr's reader) may be gone
  let uid: number;
  let secret: string;
  let gid: number;
  try {
    uid = requestingUid(o.uid);
    ({ secret, gid } = readSecretFile(o.secretFile, uid));
    checkSocketPath(o.socket, uid);
  } catch (err) {
    say(`error: ${toDevsnapError(err).message}`);
    return 6;
  }
  const idleMs = Math.max(1, Number(o.idleTimeout ?? 600) || 600) * 1000;
  const socket = net.connect(o.socket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
  } catch (err) {
    say(`error: cannot connect to ${o.socket}: ${(err as Error).message}`);
    return 6;
  }
  return new HelperSession(socket, secret, uid, gid, idleMs).run();
}

class HelperSession {
  private authed = false;
  private readonly nonce = newNonce();
  private peerNonce = '';
  private readonly framed: FramedSocket;
  private connection: MessageConnection | null = null;
  private server: OpServer | null = null;
  /** Calls accepted and not yet ended (queued or running). */
  private busy = 0;
  private queue: Promise<void> = Promise.resolve();
  /** The requesting user's identity, taken on for the repository side of requests (null: the user is root, or the helper is not). */
  private readonly user: Identity | null;
  private idleTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private finish!: (code: number) => void;

  constructor(
    private readonly socket: net.Socket,
    private readonly secret: string,
    private readonly uid: number,
    private readonly gid: number,
    private readonly idleMs: number,
  ) {
    this.user = canSwitch && uid !== 0 ? userIdentity(uid, gid) : null;
    this.framed = new FramedSocket(socket);
  }

  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    this.framed.onMessage = (m) => this.onHandshake(m);
    this.framed.onProblem = (p) => void this.stop(`unauthenticated peer sent a ${p.kind} frame`, 6, false);
    this.socket.on('error', (err) => say(`socket error: ${err.message}`));
    this.socket.on('close', () => void this.stop('the extension closed the channel', 0, false));
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void this.stop(`${sig} received`, 0, true));
    const handshakeTimer = setTimeout(() => {
      if (!this.authed) void this.stop('no authentication within the time allowed', 6, false);
    }, HANDSHAKE_TIMEOUT_MS);
    handshakeTimer.unref();
    this.framed.send({ v: PROTOCOL_VERSION, type: 'hello', nonce: this.nonce, pid: process.pid, uid: this.uid });
    say(`connected; authenticating (serving uid ${this.uid})`);
    return done;
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.busy) this.armIdle();
      else void this.stop(`idle for ${Math.round(this.idleMs / 1000)} s`, 0, true);
    }, this.idleMs);
  }

  private onHandshake(msg: unknown): void {
    if (this.stopping) return;
    const o = (msg && typeof msg === 'object' ? msg : {}) as Record<string, unknown>;
    if (o.v !== PROTOCOL_VERSION) return void this.stop(`the extension speaks protocol version ${JSON.stringify(o.v)}, not ${PROTOCOL_VERSION}`, 6, false);
    if (!this.peerNonce) {
      if (o.type !== 'challenge' || typeof o.nonce !== 'string' || !/^[0-9a-f]{64}$/.test(o.nonce)) return void this.stop("expected the extension's challenge", 6, false);
      if (!macEquals(o.mac, macFor('extension', this.secret, this.nonce, o.nonce))) {
        return void this.stop('authentication failed: the peer does not know the secret; refusing to serve it', 6, false);
      }
      this.peerNonce = o.nonce;
      this.framed.send({ v: PROTOCOL_VERSION, type: 'auth', mac: macFor('helper', this.secret, this.peerNonce, this.nonce) });
      return;
    }
    if (o.type !== 'ready') return void this.stop('the extension did not accept our authentication', 6, false);
    this.authed = true;
    say('authenticated; serving requests');
    this.serve();
    this.armIdle();
  }

  /** From here on, each frame is one JSON-RPC message: the engine's protocol, served as the engine service serves it. */
  private serve(): void {
    const reader = new FrameMessageReader(this.framed, 'server', (r) => {
      say(`refused a message: ${r.message}`);
      this.framed.send({ jsonrpc: '2.0', id: r.id, error: { code: r.code, message: r.message, data: { code: 'USAGE', message: r.message } } });
    });
    const connection = createMessageConnection(reader, new FrameMessageWriter(this.framed));
    this.connection = connection;
    connection.onRequest(RPC_SHUTDOWN, () => {
      setImmediate(() => void this.stop('asked to shut down', 0, true));
      return { stopping: true };
    });
    this.server = serveOps(connection, { names: HELPER_OP_NAMES, run: (name, params, ctx, token) => this.enqueue(name, params, ctx, token), onCall: () => this.armIdle(), report: say });
    connection.listen();
  }

  /**
   * One call at a time: a call's identity (root or the user, identity.ts) is the whole process's,
   * so another call's file I/O must never run while it is in effect.
   */
  private enqueue(name: string, raw: unknown, ctx: EngineContext, token: string | undefined): Promise<unknown> {
    if (this.stopping) return Promise.reject(new DevsnapError('CANCELLED', 'The helper is stopping; nothing was changed.'));
    const v = validateCall(name, raw);
    if (!v.ok) {
      say(`refused a request: ${v.message}`);
      return Promise.reject(new DevsnapError('USAGE', v.message));
    }
    const log = (message: string) => {
      say(`  ${message}`);
      ctx.log?.(message);
    };
    if (this.busy) log(`Waiting for the helper's ${this.busy} earlier request(s) to finish.`);
    this.busy++;
    const turn = this.queue.then(() => {
      if (ctx.signal?.aborted) throw new DevsnapError('CANCELLED', `The ${name} request was cancelled before it started; nothing was changed.`);
      return this.execute(v.call, { ...ctx, log }, token ?? '-');
    });
    this.queue = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn.finally(() => this.busy--);
  }

  /**
   * Checks a request on the helper's side (as root: paths are resolved and devices inspected), then
   * runs it through the shared operations with the rights it needs (README.md, "Whose rights"): in a
   * repository of the user's, everything with the user's identity except opening the request's
   * block device and fsfreeze (disk/privilege.ts), and the writing of an in-place file restore; in a
   * root-owned repository nobody else can change, as root, except opening the user's image files.
   */
  private async execute(req: HelperCall, base: EngineContext, token: string): Promise<unknown> {
    say(`request ${token}: ${req.type}`);
    if (req.type === 'listDisks') return runOp('listDisks', {}, base);
    if (req.type === 'autoInstall' || req.type === 'autoRemove') return runAutomation(req, this.uid, base); // as root, '/' only (auto-checks.ts)

    const mayCreate = req.type === 'snapshot' || req.type === 'planSnapshot';
    const repo = isS3Location(req.repo) ? bucketRepository(req.repo, req.s3Credentials, this.uid) : resolveRepository(req.repo, this.uid, !!req.allowRootRepository, mayCreate);
    const user = this.user;
    const asUser = user !== null && repo.uid !== 0;
    /** The one block device this request may open as root, as the checks saw it. */
    let device: { path: string; rdev: number } | null = null;
    const approve = (p: string) => (device = { path: p, rdev: fs.statSync(p).rdev });
    let ctx: EngineContext = base;
    // The engine's request: the helper's switches left out, paths as the checks resolved them.
    const { type: _type, allowRootRepository: _root, ...fields } = req;
    const { confirmed, allowSystemDisk, ...rest } = fields as typeof fields & { confirmed?: boolean; allowSystemDisk?: boolean };
    const params: Record<string, unknown> = { ...rest, repo: repo.path };
    switch (req.type) {
      case 'snapshot': {
        const src = resolveDiskPath(req.source, 'source', this.uid);
        if (src.kind === 'block') approve(src.path);
        if (req.freeze) {
          const info = await inspectPath(src.path, 'source');
          if (info.isSystem)
            throw new DevsnapError(
              'BAD_SOURCE',
              `Refused: the helper does not freeze the running system's filesystems (${src.path}): if it were stopped while they are frozen, the system would hang.`,
              'Snapshot without --freeze: the default pauses writes only for the last, short pass.',
            );
        }
        params.source = src.path;
        break;
      }
      case 'planSnapshot': {
        const src = resolveDiskPath(req.source, 'source', this.uid);
        if (src.kind === 'block') approve(src.path);
        params.source = src.path;
        break;
      }
      case 'restoreFiles': {
        // In place as restoreFiles decides it ('/' defaults to in place), so the checks and the restore agree.
        const inPlace = req.inPlace ?? path.resolve(req.target) === '/';
        const target = resolveFilesTarget(req.target, this.uid, { inPlace, confirmed: !!confirmed, dryRun: !!req.dryRun });
        if (target.owner === 'user' && user && !asUser) {
          // Reading root's repository needs root, writing the user's folder must not have it.
          throw new HelperRefusal(
            'PERMISSION',
            `Refused: the helper restores files from the root-owned repository ${repo.path} only in place, not into a folder of yours (${target.path}): it would have to write there as root.`,
            `Make the repository yours (sudo chown -R ${this.uid} ${repo.path}), or restore the files as root.`,
          );
        }
        Object.assign(params, { target: target.path, inPlace });
        // Only a confirmed in-place restore puts back the snapshot's owners (root's files in /usr, ...);
        // everything else the helper writes is the requesting user's, as if they had restored it themselves.
        // An in-place dry run plans with the snapshot's owners, as the confirmed run after it will write.
        const keepOwners = inPlace && (!!confirmed || !!req.dryRun);
        ctx = {
          ...ctx,
          ...(keepOwners ? {} : { restoreFilesOwner: { uid: this.uid, gid: this.gid } }),
          checkRestoreFiles: (entries) =>
            checkFileDestinations(
              entries.map((e) => e.dest),
              target,
            ),
          // Into root's folders: the writing (and the reading of packs it needs) as root, through
          // folders checkFileDestinations found out of the user's reach.
          ...(asUser && target.owner === 'root' ? { asRoot: <T>(fn: () => Promise<T>) => withIdentity(ROOT, fn) } : {}),
        };
        break;
      }
      case 'undo': {
        // In place, as an in-place restoreFiles: what is put back and what is removed go through
        // the same checks of the way to each path before anything is changed.
        const target = resolveFilesTarget(req.target, this.uid, { inPlace: true, confirmed: !!confirmed, dryRun: !!req.dryRun });
        if (target.owner === 'user' && user && !asUser) {
          throw new HelperRefusal(
            'PERMISSION',
            `Refused: the helper undoes an upgrade from the root-owned repository ${repo.path} only in a folder of root's, not in ${target.path}: it would have to write there as root.`,
            `Make the repository yours (sudo chown -R ${this.uid} ${repo.path}), or run the undo as root.`,
          );
        }
        params.target = target.path;
        const undoCtx: UndoContext = {
          ...ctx,
          checkRestoreFiles: (entries) =>
            checkFileDestinations(
              entries.map((e) => e.dest),
              target,
            ),
          confirmUndo: async (plan) =>
            checkFileDestinations(
              plan.entries.filter((e) => e.action === 'restore' || e.action === 'remove').map((e) => path.join(target.path, e.path)),
              target,
            ),
          ...(asUser && target.owner === 'root' ? { asRoot: <T>(fn: () => Promise<T>) => withIdentity(ROOT, fn) } : {}),
        };
        ctx = undoCtx;
        break;
      }
      case 'restore': {
        const dst = resolveDiskPath(req.target, 'target', this.uid);
        if (dst.kind === 'block') {
          await this.checkRestoreDevice(dst.path, !!allowSystemDisk);
          approve(dst.path);
        }
        if (!req.dryRun && !confirmed)
          throw new DevsnapError(
            'USAGE',
            `Refused: restoring onto ${dst.path} overwrites it, and the request does not say the user confirmed it.`,
            'Ask the user, then send the request with confirmed: true.',
          );
        params.target = dst.path;
        break;
      }
    }
    // The same implementation the CLI and the engine service run; its schema checks the request again.
    const run = () => runOp(req.type, params, ctx);
    if (!user) return run();
    setPrivilegePolicy(this.policy(user, () => device));
    try {
      if (!asUser) return await run();
      return await withIdentity(user, async () => {
        try {
          return await run();
        } catch (err) {
          // Converted here, with the user's identity in effect (the message depends on who was refused).
          const e = toDevsnapError(err);
          if (e.code !== 'PERMISSION' || err instanceof HelperRefusal) throw e;
          // The kernel refused the user's own rights somewhere in their repository (a root-owned file, a link to root's folder).
          throw new DevsnapError(
            'PERMISSION',
            `${e.message} The helper works in your repository ${repo.path} with your own rights (uid ${this.uid}).`,
            `Everything in the repository, and wherever links in it lead, must be yours to read and write: \`sudo chown -R ${this.uid} ${repo.path}\` makes it so.`,
          );
        }
      });
    } finally {
      setPrivilegePolicy(null);
    }
  }

  /**
   * Where a request of a non-root user needs other rights than its own: the approved block device
   * is opened as root (and must still be that device), image files are opened as the user, fsfreeze
   * runs as root.
   */
  private policy(user: Identity, device: () => { path: string; rdev: number } | null): PrivilegePolicy {
    const NOFOLLOW = fs.constants.O_NOFOLLOW;
    return {
      openDisk: async (p, flags, mode) => {
        const dev = device();
        if (!dev || p !== dev.path) return withIdentity(user, () => fs.promises.open(p, flags, mode));
        return withIdentity(ROOT, async () => {
          const fh = await fs.promises.open(p, (flags === 'r' ? fs.constants.O_RDONLY : fs.constants.O_RDWR) | NOFOLLOW);
          const st = await fh.stat();
          if (!st.isBlockDevice() || st.rdev !== dev.rdev) {
            await fh.close();
            throw new HelperRefusal('PERMISSION', `Refused: ${p} was replaced while the request ran; it is no longer the device that was checked.`);
          }
          return fh;
        });
      },
      asRootSync: (fn) => withIdentitySync(ROOT, fn),
    };
  }

  /** A device restore target: not mounted, not the running system's disk (explicit or not). */
  private async checkRestoreDevice(dev: string, allowSystemDisk: boolean): Promise<void> {
    const info = await inspectPath(dev, 'target');
    if (info.isSystem) {
      throw new DevsnapError(
        'BAD_TARGET',
        allowSystemDisk
          ? `Refused: ${dev} holds the running system. Even with allowSystemDisk the helper does not overwrite it while that system runs: the kernel has its root filesystem mounted from it and would keep writing to it (and crash) while the restore overwrites it underneath.`
          : `Refused: ${dev} holds the running system.`,
        'Boot a recovery environment (a live USB) and restore from there.',
      );
    }
    assertNotInUse(info, dev);
  }

  /** Stops every running request at a safe point (cancellation), then closes and exits. */
  private stop(reason: string, code: number, polite: boolean): Promise<void> {
    if (this.stopping) return this.stopping;
    say(`stopping: ${reason}`);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.stopping = (async () => {
      if (this.server?.running) say(`cancelling ${this.server.running} running request(s) at a safe point`);
      await this.server?.stopAll();
      if (polite && this.connection) await this.connection.sendNotification(RPC_BYE, { reason }).catch(() => undefined);
      await new Promise<void>((resolve) => {
        if (this.socket.destroyed) return resolve();
        this.socket.end(() => resolve());
        setTimeout(resolve, 1000).unref();
      });
      this.socket.destroy();
      this.connection?.dispose();
      say('exiting');
      this.finish(code);
    })();
    return this.stopping;
  }
}
