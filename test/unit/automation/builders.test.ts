// The text of everything `devsnap auto install` writes or runs (systemd units, apt/pacman/dnf hooks,
// schtasks arguments, the launchd plist), the config's checks, and the labels read from what a
// package manager's hook receives. Pure functions: exact text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type AutoConfig, autoPaths, parseConfig } from '../../../imaging/automation/config';
import { aptHook, dnfAction, pacmanHook, shellQuote } from '../../../imaging/automation/hooks';
import { changesLabel, commandLineLabel, MAX_LABEL, parseAptInput, parsePacmanInput } from '../../../imaging/automation/hook-input';
import { plannedFiles } from '../../../imaging/automation/install';
import { launchdPlist, schtasksCreate, schtasksDelete } from '../../../imaging/automation/platforms';
import { isAutomaticLabel } from '../../../imaging/automation/run';
import { systemdQuote, systemdService, systemdTimer, systemdUnquote } from '../../../imaging/automation/units';

const CMD = ['/usr/bin/node', '/opt/devsnap/bin/devsnap.js'];
const CONFIG = '/etc/devsnap/auto.json';
const cfg: AutoConfig = { repository: '/mnt/backup/devsnap', source: '/dev/nvme0n1', schedule: 'daily', hooks: ['apt'] };
const HEADER = 'Written by `devsnap auto install` (automatic snapshots); `devsnap auto remove` removes it.';

test('systemd service: a oneshot at idle priority that runs `auto run` with the config, after the repository is mounted', () => {
  assert.equal(
    systemdService(CMD, CONFIG, cfg),
    `# ${HEADER}
[Unit]
Description=devsnap: scheduled snapshot of /dev/nvme0n1
RequiresMountsFor=/mnt/backup/devsnap

[Service]
Type=oneshot
ExecStart=/usr/bin/node /opt/devsnap/bin/devsnap.js auto run --config /etc/devsnap/auto.json
Nice=19
IOSchedulingClass=idle
`,
  );
});

test('systemd timer: the schedule as OnCalendar, persistent, with a randomized delay', () => {
  assert.equal(
    systemdTimer('Mon..Fri *-*-* 12:30:00'),
    `# ${HEADER}
[Unit]
Description=devsnap: scheduled snapshots (Mon..Fri *-*-* 12:30:00)

[Timer]
OnCalendar=Mon..Fri *-*-* 12:30:00
Unit=devsnap-snapshot.service
Persistent=true
RandomizedDelaySec=30min

[Install]
WantedBy=timers.target
`,
  );
});

test('systemd quoting: words with spaces are quoted, specifiers and variables escaped, and read back the same', () => {
  assert.equal(systemdQuote('/plain/path-1.js'), '/plain/path-1.js');
  assert.equal(systemdQuote('/my disks/repo'), '"/my disks/repo"');
  assert.equal(systemdQuote('a%b$c"d\\e'), '"a%%b$$c\\"d\\\\e"');
  const words = ['/usr/bin/node', '/opt/my devsnap/cli.js', 'a%b$c"d\\e', 'run'];
  assert.deepEqual(systemdUnquote(words.map(systemdQuote).join(' ')), words);
  const spaced = systemdService(['/usr/bin/node', '/opt/my devsnap/cli.js'], '/etc/my conf/auto.json', { ...cfg, repository: '/mnt/my backup' });
  assert.match(spaced, /^ExecStart=\/usr\/bin\/node "\/opt\/my devsnap\/cli.js" auto run --config "\/etc\/my conf\/auto.json"$/m);
  assert.match(spaced, /^RequiresMountsFor="\/mnt\/my backup"$/m);
});

test('apt hook: Pre-Install-Pkgs with version 3 input, found by a first word no other hook has, never failing apt', () => {
  assert.equal(
    aptHook(CMD, CONFIG),
    `// ${HEADER}
// A snapshot before apt installs, upgrades or removes packages, labelled with what changes.
DPkg::Pre-Install-Pkgs { "DEVSNAP_HOOK=apt /usr/bin/node /opt/devsnap/bin/devsnap.js hook pre-upgrade --manager apt --config /etc/devsnap/auto.json || true"; };
DPkg::Tools::Options::DEVSNAP_HOOK=apt::Version "3";
`,
  );
  assert.match(aptHook(['/usr/bin/node', '/opt/my devsnap/cli.js'], CONFIG), /DEVSNAP_HOOK=apt \/usr\/bin\/node '\/opt\/my devsnap\/cli.js' hook/);
});

test('pacman hook: PreTransaction on every package, targets on stdin, no AbortOnFail', () => {
  assert.equal(
    pacmanHook(CMD, CONFIG),
    `# ${HEADER}
[Trigger]
Operation = Install
Operation = Upgrade
Operation = Remove
Type = Package
Target = *

[Action]
Description = Taking a devsnap snapshot before the transaction...
When = PreTransaction
Exec = /usr/bin/node /opt/devsnap/bin/devsnap.js hook pre-upgrade --manager pacman --config /etc/devsnap/auto.json
NeedsTargets
`,
  );
});

test('dnf action: one line without $variables (so it runs once per transaction)', () => {
  assert.equal(dnfAction(CMD, CONFIG), `# ${HEADER}\n*:any:/usr/bin/node /opt/devsnap/bin/devsnap.js hook pre-upgrade --manager dnf --config /etc/devsnap/auto.json\n`);
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

test('a devsnap path the files could not carry unchanged is refused, naming it', () => {
  for (const bad of [['node', '/x.js'], ['/usr/bin/node', '/opt/$HOME/x.js'], ['/usr/bin/node', '/opt/a"b/x.js'], ['/usr/bin/node', '/opt/a\nb/x.js'], []]) {
    assert.throws(
      () => aptHook(bad, CONFIG),
      (e: Error & { code?: string }) => e.code === 'USAGE' && /cannot be started from the files/.test(e.message),
    );
  }
  assert.throws(() => systemdService(['/usr/bin/node', '/opt/100%/x.js'], CONFIG, cfg), /100%/);
});

test('Task Scheduler: schtasks /Create as SYSTEM on the preset, /TR quoted; calendar expressions and long lines refused', () => {
  const win = ['C:\\Program Files\\nodejs\\node.exe', 'C:\\devsnap\\devsnap.js'];
  assert.deepEqual(schtasksCreate(win, 'C:\\ProgramData\\devsnap\\auto.json', 'weekly'), [
    '/Create',
    '/TN',
    '\\devsnap\\snapshot',
    '/TR',
    '"C:\\Program Files\\nodejs\\node.exe" C:\\devsnap\\devsnap.js auto run --config C:\\ProgramData\\devsnap\\auto.json',
    '/SC',
    'WEEKLY',
    '/D',
    'MON',
    '/ST',
    '00:00',
    '/RU',
    'SYSTEM',
    '/RL',
    'HIGHEST',
    '/F',
  ]);
  assert.deepEqual(schtasksCreate(win, 'C:\\a.json', 'hourly').slice(5, 7), ['/SC', 'HOURLY']);
  assert.deepEqual(schtasksDelete(), ['/Delete', '/TN', '\\devsnap\\snapshot', '/F']);
  assert.throws(() => schtasksCreate(win, 'C:\\a.json', '*-*-* 03:00'), /cannot run on the schedule "\*-\*-\* 03:00"/);
  assert.throws(() => schtasksCreate(win, `C:\\${'x'.repeat(250)}.json`, 'daily'), /schtasks takes at most 261/);
  assert.throws(() => schtasksCreate(['/usr/bin/node'], 'C:\\a.json', 'daily'), /not a drive path/);
});

test('launchd: a daemon plist with the arguments, the calendar interval of the preset, background priority; XML escaped', () => {
  assert.equal(
    launchdPlist(['/usr/local/bin/node', '/opt/a&b/devsnap.js'], '/etc/devsnap/auto.json', 'monthly'),
    `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- ${HEADER} -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>dev.devsnap.snapshot</string>
  <key>ProgramArguments</key>
  <array>
    <string>/usr/local/bin/node</string>
    <string>/opt/a&amp;b/devsnap.js</string>
    <string>auto</string>
    <string>run</string>
    <string>--config</string>
    <string>/etc/devsnap/auto.json</string>
  </array>
  <key>StartCalendarInterval</key>
  <dict>
    <key>Day</key>
    <integer>1</integer>
    <key>Hour</key>
    <integer>0</integer>
    <key>Minute</key>
    <integer>0</integer>
  </dict>
  <key>ProcessType</key>
  <string>Background</string>
  <key>Nice</key>
  <integer>19</integer>
  <key>LowPriorityIO</key>
  <true/>
</dict>
</plist>
`,
  );
  assert.throws(() => launchdPlist(CMD, CONFIG, 'Sat 04:00'), /launchd cannot run on the schedule/);
});

test('what install writes per platform: units and hooks on Linux, the plist on macOS, no file on Windows', () => {
  const p = autoPaths('/tmp/r');
  const all = { ...cfg, hooks: ['apt', 'pacman', 'dnf'] as AutoConfig['hooks'] };
  assert.deepEqual(
    plannedFiles(all, p, CMD, 'linux').map((f) => f.path),
    [
      '/tmp/r/etc/systemd/system/devsnap-snapshot.service',
      '/tmp/r/etc/systemd/system/devsnap-snapshot.timer',
      '/tmp/r/etc/apt/apt.conf.d/05devsnap-snapshot',
      '/tmp/r/etc/pacman.d/hooks/05-devsnap-snapshot.hook',
      '/tmp/r/etc/dnf/plugins/pre-transaction-actions.d/devsnap-snapshot.action',
    ],
  );
  assert.match(plannedFiles(all, p, CMD, 'linux')[0].text, /--config \/tmp\/r\/etc\/devsnap\/auto.json$/m);
  assert.deepEqual(
    plannedFiles({ ...all, schedule: undefined }, p, CMD, 'linux').map((f) => f.what),
    ['apt hook', 'pacman hook', 'dnf hook'],
  );
  assert.deepEqual(
    plannedFiles(cfg, p, CMD, 'darwin').map((f) => f.path),
    ['/tmp/r/Library/LaunchDaemons/dev.devsnap.snapshot.plist', '/tmp/r/etc/apt/apt.conf.d/05devsnap-snapshot'],
  );
  assert.equal(autoPaths('/', '/srv/conf/auto.json').state, '/srv/conf/auto-state.json');
});

test('the config: checked field by field, unknown fields and unsafe paths refused', () => {
  const ok = parseConfig({ ...cfg, rateLimitHours: 0.5, retention: { keepLast: 3, prune: false } }, 'f');
  assert.equal(ok.rateLimitHours, 0.5);
  const problem = (value: unknown) => {
    try {
      parseConfig(value, '/etc/devsnap/auto.json');
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  assert.equal(problem({ ...cfg, sorce: '/dev/sda' }), 'The automatic snapshot configuration /etc/devsnap/auto.json is not valid: unknown field "sorce".');
  assert.match(problem({ ...cfg, source: 'dev/sda' }), /"source" must be an absolute path/);
  assert.match(problem({ ...cfg, repository: '/mnt/$x' }), /"repository" must be an absolute path .* without quotes/);
  assert.match(problem({ ...cfg, schedule: 'daily\nExecStartPre=/bin/evil' }), /"schedule" must be hourly, daily, weekly, monthly or a systemd calendar expression/);
  assert.match(problem({ ...cfg, hooks: ['zypper'] }), /"hooks\[0\]" must be one of apt, pacman, dnf/);
  assert.match(problem({ ...cfg, retention: { prune: true } }), /"retention" must keep something/);
  assert.match(problem({ ...cfg, rateLimitHours: -1 }), /"rateLimitHours" must be a number of hours/);
  assert.match(problem({ ...cfg, hookTimeoutMinutes: 0 }), /"hookTimeoutMinutes" must be a whole number of minutes/);
  assert.equal(problem({ ...cfg, repository: 'D:\\backups\\devsnap' }), 'accepted');
});

const APT_INPUT = `VERSION 3
APT::Architecture=amd64
CommandLine::AsString=apt-get%20install%20foo

foo - - none < 1.2-1 amd64 same /var/cache/apt/archives/foo_1.2-1_amd64.deb
bar 2.0 amd64 none < 2.1 amd64 none /var/cache/apt/archives/bar_2.1_amd64.deb
old 3.0 all none > - - none **REMOVE**
baz 5 all none > 4 all none /var/cache/apt/archives/baz_4_all.deb
foo - - none < 1.2-1 amd64 same **CONFIGURE**
bar 2.0 amd64 none < 2.1 amd64 none **CONFIGURE**
`;

test("apt's version 3 input: what happens to each package, once per package, into the label", () => {
  const changes = parseAptInput(APT_INPUT);
  assert.deepEqual(changes, [
    { kind: 'install', name: 'foo', version: '1.2-1' },
    { kind: 'upgrade', name: 'bar', version: '2.1' },
    { kind: 'remove', name: 'old', version: undefined },
    { kind: 'downgrade', name: 'baz', version: '4' },
  ]);
  assert.equal(changesLabel('apt', changes), 'before apt: install foo 1.2-1; upgrade bar 2.1; remove old; downgrade baz 4');
  assert.deepEqual(parseAptInput('VERSION 2\nA=1\n\nfoo 1.0 < 1.1 /x/foo.deb\n'), [{ kind: 'upgrade', name: 'foo', version: '1.1' }]);
  assert.deepEqual(parseAptInput('/var/cache/apt/archives/foo.deb\n'), [], 'version 1 (file names only) says nothing to label');
  assert.equal(changesLabel('apt', []), 'before apt: transaction');
});

test('a long transaction: the label stays within MAX_LABEL and counts the rest', () => {
  const many = Array.from({ length: 40 }, (_, i) => ({ kind: 'upgrade' as const, name: `libpackage${i}`, version: `1.${i}` }));
  const label = changesLabel('apt', many);
  assert.ok(label.length <= MAX_LABEL, `${label.length} characters`);
  assert.match(label, /^before apt: upgrade libpackage0 1\.0, libpackage1 1\.1, .* \(\+\d+ more\)$/);
  const shown = label.split(', ').length;
  assert.equal(label.match(/\(\+(\d+) more\)/)![1], String(40 - shown));
  assert.equal(changesLabel('apt', [{ name: 'x'.repeat(300) }]), 'before apt: (1 packages)');
});

test('pacman targets and dnf command lines as labels; only automatic labels are automatic', () => {
  assert.equal(changesLabel('pacman', parsePacmanInput('linux\nsystemd\nlinux\n\n')), 'before pacman: linux, systemd');
  assert.equal(commandLineLabel('dnf', ['-y', 'upgrade', 'kernel']), 'before dnf: upgrade kernel');
  assert.equal(commandLineLabel('dnf', null), 'before dnf: transaction');
  for (const l of ['scheduled: daily', 'before apt: install foo 1.2', 'before pacman: linux', 'before dnf: upgrade']) assert.ok(isAutomaticLabel(l), l);
  for (const l of ['before upgrade', 'my scheduled: one', 'before apt install', '']) assert.ok(!isAutomaticLabel(l), l);
});
