// The extension's client of the user-mode engine service (`devsnap serve --stdio`, imaging/ops/serve.ts):
// one process per window, started on the first call and started again on the next call if it died.
// `call(op, params, {progress, token})` sends one operation (protocol/ops.ts) and checks its result
// against the operation's schema, so nothing from the engine is used unchecked.
//
// No `vscode` import: the unit tests run this under plain node (CancellationLike is the subset of
// vscode.CancellationToken it needs).
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import { createMessageConnection, Message, MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { OpName, OpParams, OpResult, PROTOCOL_VERSION, RPC_HELLO, RPC_LOG, RpcLog } from '../imaging/protocol';
import { ENGINE_ENV, ENGINE_NODE_ARGS } from '../imaging/runtime';
import { CallOptions, EngineError, LineSplitter } from './engine';
import { callPeer } from './engineRpc';

export interface EngineClientOptions {
  /** Path of the engine bundle, e.g. <extensionPath>/dist/devsnap.js. */
  cliPath: string;
  /** The node to run it with: process.execPath (with ELECTRON_RUN_AS_NODE=1 in VS Code desktop). */
  nodePath?: string;
  /** Calls, the service's diagnostics and its exits (the output channel). */
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

interface Service {
  child: ChildProcess;
  connection: MessageConnection;
  ready: Promise<void>;
  /** Rejects every pending call when the process ends. */
  gone: Promise<never>;
}

/**
 * A write to a service that has just died (EPIPE, a destroyed stream) is not an error of its own:
 * the process's exit rejects every pending call with why it ended (`gone`). vscode-jsonrpc would
 * also rethrow it from inside a promise executor, where nothing can catch it.
 */
class QuietWriter extends StreamMessageWriter {
  override async write(msg: Message): Promise<void> {
    try {
      await super.write(msg);
    } catch {
      /* reported by the exit */
    }
  }
}

export class EngineClient {
  private service: Service | undefined;
  private disposed = false;
  private running = 0;

  constructor(private readonly opts: EngineClientOptions) {}

  private log(line: string): void {
    this.opts.log?.(line);
  }

  /** The process id of the running service (tests), or undefined. */
  get pid(): number | undefined {
    return this.service?.child.pid;
  }

  private start(): Service {
    const cli = this.opts.cliPath;
    if (!fs.existsSync(cli)) throw new EngineError('INTERNAL', `The devsnap engine is missing: ${cli} does not exist.`, 'Reinstall the extension, or run `npm run build` in a development checkout.');
    const child = spawn(this.opts.nodePath ?? process.execPath, [...ENGINE_NODE_ARGS, cli, 'serve', '--stdio'], {
      env: { ...process.env, ...this.opts.env, ...ENGINE_ENV, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const stderrTail: string[] = [];
    const stderr = new LineSplitter((line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
      this.log(`  [engine] ${line}`);
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => stderr.push(d));
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new QuietWriter(child.stdin!));
    connection.onNotification(RPC_LOG, (m: RpcLog) => this.log(`  ${m.message}`));
    const gone = new Promise<never>((_, reject) => {
      const end = (why: string) => {
        if (this.service?.child === child) this.service = undefined;
        connection.dispose();
        const tail = stderrTail
          .filter((l) => l.trim())
          .slice(-3)
          .join(' | ');
        reject(new EngineError('INTERNAL', `The devsnap engine stopped (${why}).`, tail ? `It said: ${tail}` : 'The next action starts it again; see the devsnap output channel.'));
      };
      child.on('error', (err) => end(`could not run: ${err.message}`));
      child.on('exit', (code, signal) => {
        stderr.flush();
        if (!this.disposed) this.log(`engine service ${child.pid} exited (${signal ?? `code ${code}`})`);
        end(signal ? `killed by ${signal}` : `exit code ${code}`);
      });
    });
    gone.catch(() => undefined);
    connection.listen();
    const ready = (async () => {
      const hello = (await Promise.race([connection.sendRequest(RPC_HELLO), gone])) as { protocol?: unknown };
      if (hello?.protocol !== PROTOCOL_VERSION) {
        child.kill();
        throw new EngineError(
          'INTERNAL',
          `The devsnap engine speaks protocol ${JSON.stringify(hello?.protocol)}, not ${PROTOCOL_VERSION}.`,
          'Reinstall the extension, or rebuild a development checkout.',
        );
      }
    })();
    this.log(`engine service started (pid ${child.pid})`);
    return { child, connection, ready, gone };
  }

  /** Runs one operation of the engine as the current user. */
  async call<K extends OpName>(op: K, params: OpParams<K>, o: CallOptions = {}): Promise<OpResult<K>> {
    if (this.disposed) throw new EngineError('CANCELLED', 'The devsnap engine has been shut down.');
    if (o.token?.isCancellationRequested) throw new EngineError('CANCELLED', 'Cancelled.', 'Nothing was changed.');
    const s = (this.service ??= this.start());
    this.hold(s, +1);
    try {
      await s.ready;
      return await this.send(s, op, params, o);
    } finally {
      this.hold(s, -1);
    }
  }

  /**
   * An idle service must not keep its client's process alive (a script, a test, the CLI): it is
   * referenced only while calls run. It ends by itself when our end of its stdin closes.
   */
  private hold(s: Service, delta: number): void {
    this.running += delta;
    const ref = this.running > 0;
    for (const h of [s.child, s.child.stdin, s.child.stdout, s.child.stderr] as ({ ref(): void; unref(): void } | null)[]) {
      if (ref) h?.ref();
      else h?.unref();
    }
  }

  private send<K extends OpName>(s: Service, op: K, params: OpParams<K>, o: CallOptions): Promise<OpResult<K>> {
    return callPeer({ connection: s.connection, gone: s.gone, name: 'engine', log: (line) => this.log(line) }, op, params, o);
  }

  /** Ends the service (its stdin closes; it stops at a safe point). */
  dispose(): void {
    this.disposed = true;
    const s = this.service;
    this.service = undefined;
    if (!s) return;
    s.connection.dispose();
    s.child.stdin?.end();
    setTimeout(() => s.child.kill(), 5000).unref();
  }
}
