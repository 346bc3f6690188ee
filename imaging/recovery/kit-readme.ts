// README.txt of the recovery kit: what a person with a computer that no longer boots reads first, so
// plain steps, no jargon, every command written out.

export function kitReadme(o: { engine: string; node: string; repository?: string }): string {
  const repo = o.repository ? '..' : '/path/to/the/repository';
  return `devsnap recovery kit
====================

devsnap ${o.engine}, with its own Node ${o.node}, for 64-bit PCs (Linux x86-64).

This folder puts a devsnap snapshot back on a computer that does not start any more. It works
from any live Linux USB stick (Ubuntu, Debian, Fedora, Mint, ...). Nothing has to be installed
and no network is needed: everything it runs is in this folder.
${o.repository ? '\nThe snapshots are in the folder that holds this one (the repository).\n' : ''}
Restore your computer
---------------------

1. Start the computer from a live Linux USB stick ("Try Ubuntu" or similar).
2. Plug in the drive that holds this folder and open a terminal.
3. Find this folder. It is usually under /media, for example
       /media/ubuntu/BACKUP/devsnap/recovery
   "lsblk -f" lists the drives. If the drive is not mounted yet:
       sudo mount /dev/sdb1 /mnt        (then it is under /mnt)
4. Go into this folder and start the guided restore:
       cd /media/ubuntu/BACKUP/devsnap/recovery
       sudo ./devsnap recover${o.repository ? '' : ' --repo /path/to/the/repository'}
   It lists the disks of this computer and your snapshots, and proposes the disk and the newest
   verified snapshot of it. It shows what will be overwritten, and writes nothing until you type
   the disk's name. Then it restores (with progress), checks what it wrote, and says what to do
   next. An encrypted repository asks for its password.
5. When it is done, shut down, remove the USB stick, and start the computer.

If the computer then does not find its system, open the firmware's boot menu (often F12, F8 or
Esc at power-on) and pick the disk or "Linux Boot Manager" / "ubuntu" entry.

By hand
-------
    sudo ./devsnap list --repo ${repo}                    the snapshots
    sudo ./devsnap disks                                 the disks of this computer
    sudo ./devsnap verify latest --repo ${repo}           check a snapshot's data
    sudo ./devsnap restore SNAPSHOT /dev/nvme0n1 --repo ${repo}
                                                          put a whole disk back
    sudo ./devsnap restore-files SNAPSHOT /etc/fstab --to /tmp/out --repo ${repo}
                                                          copy single files out
    ./devsnap --help                                      everything else

SNAPSHOT is a snapshot's id, its label, or "latest".

If it does not start
--------------------
- "Permission denied": the drive is mounted so that nothing on it may run. The launcher then
  runs a copy of Node from memory by itself; if that fails too, copy this folder first:
      cp -r . /tmp/recovery && sudo /tmp/recovery/devsnap recover${o.repository ? ` --repo "$PWD/.."` : ''}
- "cannot execute binary file": this computer is not a 64-bit PC (x86-64). ARM computers
  (Raspberry Pi, Apple silicon, Snapdragon laptops) are not covered by this kit yet, nor is
  starting from Windows or macOS.
- Node needs glibc 2.28 or later: every live USB of the last five years has it.

kit.json lists every file of this kit with its SHA-256. "sudo ./devsnap kit status --dir ." checks
them.
`;
}
