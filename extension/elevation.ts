// How the elevated helper is launched: which method the `devsnap.elevation` setting and the
// platform call for, and the exact command line of each, quoted for the layers it passes through.
// Pure functions (no `vscode`, no process spawning) so the unit tests can check every builder.
//
//   direct     the extension already runs as root: `node devsnap.js helper ...`, no prompt
//   pkexec     Linux, polkit's password dialog: `pkexec /usr/bin/env ELECTRON_RUN_AS_NODE=1 node ...`
//              (pkexec clears the environment, so the variable goes through `env`)
//   sudo       Linux/macOS fallback: `sudo -A ...` with SUDO_ASKPASS = a script that asks the
//              extension (VS Code's password input box) over a socket in the private folder
//   runas      Windows UAC: `powershell Start-Process -Verb RunAs` (NOT exercised end to end yet)
//   osascript  macOS administrator prompt: `do shell script "..." with administrator privileges`
//              (NOT exercised end to end yet; `do shell script` returns only when the helper exits,
//              which is fine: progress and results flow over the helper's own socket)
import type { Elevation } from './config';
import { ENGINE_ENV, ENGINE_NODE_ARGS } from '../imaging/runtime';

export type ElevationMethod = 'direct' | 'pkexec' | 'sudo' | 'runas' | 'osascript';

export interface HelperInvocation {
  /** The Node runtime: VS Code's own (process.execPath, with ELECTRON_RUN_AS_NODE=1) or a node on PATH. */
  nodePath: string;
  /** dist/devsnap.js */
  cliPath: string;
  socket: string;
  secretFile: string;
  uid: number;
  idleTimeoutSeconds: number;
}

export interface LaunchCommand {
  method: ElevationMethod;
  command: string;
  args: string[];
  /** Added to the launcher's environment. */
  env: Record<string, string>;
  /** Shows a password / consent prompt (so allow the user time). */
  prompts: boolean;
}

export interface ElevationEnvironment {
  platform: NodeJS.Platform | string;
  /** process.getuid?.(); undefined on Windows. */
  uid: number | undefined;
  /** pkexec is installed and a graphical session (DISPLAY / WAYLAND_DISPLAY) can show polkit's dialog. */
  pkexecUsable: boolean;
}

/**
 * The launch method for a setting, or null when the helper is not to be used ('none': the engine
 * runs as the user through the CLI, see extension/engine.ts).
 */
export function chooseMethod(setting: Elevation, env: ElevationEnvironment): ElevationMethod | null {
  if (setting === 'none') return null;
  if (env.uid === 0) return 'direct';
  if (env.platform === 'win32') return 'runas';
  if (env.platform === 'darwin') return setting === 'sudo' ? 'sudo' : 'osascript';
  if (setting === 'pkexec') return 'pkexec';
  if (setting === 'sudo') return 'sudo';
  return env.pkexecUsable ? 'pkexec' : 'sudo';
}

/** The helper's own arguments (after the node runtime). The secret is never among them. */
export function helperArgs(inv: HelperInvocation): string[] {
  return [inv.cliPath, 'helper', '--socket', inv.socket, '--secret-file', inv.secretFile, '--uid', String(inv.uid), '--idle-timeout', String(inv.idleTimeoutSeconds)];
}

/** Quotes one word for a POSIX shell: single quotes, with ' written as '\''. */
export function shQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** An AppleScript string literal: backslashes and double quotes escaped. */
export function appleScriptString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Quotes one argument the way Windows programs split their command line (CommandLineToArgvW, the
 * MSVC runtime): wrap in double quotes when needed; backslashes are literal except before a
 * double quote, where they are doubled, and the quote itself is escaped as \".
 */
export function windowsArg(s: string): string {
  if (s.length && !/[\s"]/.test(s)) return s;
  let out = '"';
  let backslashes = 0;
  for (const ch of s) {
    if (ch === '\\') {
      backslashes++;
      continue;
    }
    if (ch === '"') {
      out += '\\'.repeat(backslashes * 2 + 1) + '"';
    } else {
      out += '\\'.repeat(backslashes) + ch;
    }
    backslashes = 0;
  }
  return out + '\\'.repeat(backslashes * 2) + '"';
}

/** A PowerShell single-quoted string literal ('' for a quote; nothing else is special inside). */
export function psQuote(s: string): string {
  return `'${s.replace(/'/g, "''").replace(/[\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

export function buildLaunch(method: ElevationMethod, inv: HelperInvocation, opts: { askpass?: string } = {}): LaunchCommand {
  const args = helperArgs(inv);
  // The engine's runtime settings (imaging/runtime.ts), where the command line can carry them.
  const tuned = [...ENGINE_NODE_ARGS, ...args];
  const envWords = Object.entries(ENGINE_ENV).map(([k, v]) => `${k}=${v}`);
  switch (method) {
    case 'direct':
      return { method, command: inv.nodePath, args: tuned, env: { ELECTRON_RUN_AS_NODE: '1', ...ENGINE_ENV }, prompts: false };
    case 'pkexec':
      return { method, command: 'pkexec', args: ['/usr/bin/env', 'ELECTRON_RUN_AS_NODE=1', ...envWords, inv.nodePath, ...tuned], env: {}, prompts: true };
    case 'sudo':
      if (!opts.askpass) throw new Error('sudo needs an askpass program');
      // -A: ask through SUDO_ASKPASS (there is no terminal); env: sudo may reset the environment.
      return { method, command: 'sudo', args: ['-A', '--', '/usr/bin/env', 'ELECTRON_RUN_AS_NODE=1', ...envWords, inv.nodePath, ...tuned], env: { SUDO_ASKPASS: opts.askpass }, prompts: true };
    case 'runas': {
      // The helper's command line as Windows parses it, inside a PowerShell literal, inside
      // PowerShell's -Command (node quotes that argument for CreateProcess itself).
      const argLine = args.map(windowsArg).join(' ');
      const script = `$env:ELECTRON_RUN_AS_NODE = '1'; Start-Process -FilePath ${psQuote(inv.nodePath)} -ArgumentList ${psQuote(argLine)} -Verb RunAs -WindowStyle Hidden -Wait`;
      return { method, command: 'powershell.exe', args: ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command', script], env: {}, prompts: true };
    }
    case 'osascript': {
      const line = ['ELECTRON_RUN_AS_NODE=1', ...[inv.nodePath, ...args].map(shQuote)].join(' ');
      return { method, command: '/usr/bin/osascript', args: ['-e', `do shell script ${appleScriptString(line)} with administrator privileges`], env: {}, prompts: true };
    }
  }
}

/**
 * The SUDO_ASKPASS program: a shell script that runs node with a few lines of JavaScript which
 * send sudo's prompt to the extension's askpass socket and print the password the user typed
 * into VS Code's input box (exit 1, and sudo gives up, when the user dismissed it).
 */
export function askpassScript(nodePath: string, socket: string): string {
  const js = [
    "const s=require('net').connect(process.argv[1]);let d='';",
    "s.on('error',()=>process.exit(1));s.on('data',(c)=>{d+=c;});",
    "s.on('end',()=>{let r={};try{r=JSON.parse(d);}catch{}if(typeof r.password!=='string')process.exit(1);process.stdout.write(r.password+'\\n');});",
    "s.write(JSON.stringify({prompt:process.argv[2]||''})+'\\n');",
  ].join('');
  return `#!/bin/sh\nELECTRON_RUN_AS_NODE=1 exec ${shQuote(nodePath)} -e ${shQuote(js)} ${shQuote(socket)} "$1"\n`;
}
