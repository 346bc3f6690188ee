// Real LVM on loop devices without device-mapper (inactive LVs): each command sees only the given
// devices, and leaves no backup or archive in /etc/lvm.
import { spawnSync } from 'child_process';
import { isRoot, sh } from './disks';

export const hasLvm = isRoot && spawnSync('lvm', ['version'], { stdio: 'ignore' }).error === undefined;

export function lvmConfig(devs: string[]): string {
  const accept = [...devs.map((d) => `"a|^${d}$|"`), '"r|.*|"'].join(',');
  return `devices { filter=[${accept}] global_filter=[${accept}] hints="none" obtain_device_list_from_udev=0 } backup { backup=0 archive=0 } activation { udev_sync=0 udev_rules=0 monitoring=0 }`;
}

/** Runs an LVM command (argv[0] is the command: pvcreate, vgcreate, lvs…) seeing only `devs`. */
export const lvm = (argv: string[], devs: string[], allowFail = false) =>
  sh(argv[0], ['--driverloaded', 'n', '--config', lvmConfig(devs), ...argv.slice(1)], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' }, allowFail });

/** The LV names of a volume group, sorted. */
export const lvNames = (vg: string, devs: string[]): string[] =>
  JSON.parse(lvm(['lvs', '--reportformat', 'json', '-o', 'lv_name', vg], devs).stdout)
    .report[0].lv.map((l: { lv_name: string }) => l.lv_name)
    .sort();
