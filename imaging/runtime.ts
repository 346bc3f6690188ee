// How the engine's Node process is started. The engine moves 1 MiB buffers between threads by the
// thousand, and two settings that only take effect when a process starts keep their memory from
// piling up (measured on the bench's disk, an incremental: 245–261 MB without, 177–190 MB with):
//  - a 1 MiB young generation: a buffer's memory is freed only when the object holding it is
//    collected, and a small young generation is collected often (semi-spaces of 1/2/4/8 MiB gave
//    180/200/220/233 MB);
//  - glibc's mmap threshold fixed at 128 KiB: blocks above it are mapped and returned to the system
//    when freed, where by default the threshold grows to the largest block freed and later MiB-size
//    blocks stay in the heap (on its own: 221 MB).
// The extension and the helper's launcher start the engine with them; the CLI started any other way
// runs itself again once with them (relaunchTuned).
import { spawn } from 'child_process';
import * as os from 'os';

export const ENGINE_NODE_ARGS: readonly string[] = ['--max-semi-space-size=1'];
export const ENGINE_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072', DEVSNAP_TUNED: '1' };

const RELAUNCHED = 'relaunched';

/**
 * In a relaunched engine, calls `stop` once the process that relaunched it is gone (killed with
 * SIGKILL, which it cannot pass on): the engine then stops at a safe point rather than run on unseen.
 */
export function watchLauncher(stop: () => void): void {
  if (process.env.DEVSNAP_TUNED !== RELAUNCHED) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop();
  }, 500);
  timer.unref();
}

/**
 * Starts this CLI again with the settings above, stdio inherited, and exits with its status; false
 * when this process already has them (or DEVSNAP_TUNED=0 turns the relaunch off). The terminal's
 * Ctrl-C and hangup reach the child directly (same process group); a SIGTERM sent to this process
 * is passed on.
 */
export function relaunchTuned(): boolean {
  if (process.env.DEVSNAP_TUNED) return false;
  const child = spawn(process.execPath, [...ENGINE_NODE_ARGS, ...process.execArgv, process.argv[1], ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, ...ENGINE_ENV, DEVSNAP_TUNED: RELAUNCHED },
  });
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('error', (err) => {
    process.stderr.write(`devsnap: could not start the engine (${err.message}); run it with DEVSNAP_TUNED=0 to skip the relaunch.\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + ((signal && os.constants.signals[signal]) || 1)));
  return true;
}
