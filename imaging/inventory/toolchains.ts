// Toolchains found in a tree (inventory.ts lists what each is read from): version files and folder names
// of node, npm, python, pip, go, rustc, cargo, gcc, clang, java and dotnet, else the package list.
import type { InventoryPackage, InventoryToolchain } from '../protocol';
import { compareVersions } from './parsers';
import { homes, type InventoryRoot } from './roots';

export async function treeToolchains(root: InventoryRoot, packages: InventoryPackage[]): Promise<InventoryToolchain[]> {
  const out: InventoryToolchain[] = [];
  const add = (name: string, version: string | null | undefined, p?: string) => {
    if (version && !out.some((t) => t.name === name && t.version === version)) out.push({ name, version, ...(p ? { path: p } : {}) });
  };
  const text = async (p: string) => (await root.readFile(p))?.toString('utf8') ?? null;

  for (const prefix of ['/usr', '/usr/local']) {
    const h = await text(`${prefix}/include/node/node_version.h`);
    if (h) {
      const g = (k: string) => new RegExp(`#define\\s+NODE_${k}_VERSION\\s+(\\d+)`).exec(h)?.[1];
      if (g('MAJOR')) add('node', `${g('MAJOR')}.${g('MINOR')}.${g('PATCH')}`, `${prefix}/bin/node`);
    }
    for (const npmDir of [`${prefix}/lib/node_modules/npm`, `${prefix}/share/nodejs/npm`]) {
      const pj = await text(`${npmDir}/package.json`);
      if (pj) {
        try {
          add('npm', JSON.parse(pj).version, `${npmDir}`);
        } catch {
          /* not JSON */
        }
      }
    }
    for (const n of ((await root.readdir(`${prefix}/lib`)) ?? []).filter((x) => /^python3\.\d+$/.test(x))) add('python', n.slice(6), `${prefix}/bin/${n}`);
    for (const d of [`${prefix}/lib/python3/dist-packages`, `${prefix}/lib/python3/site-packages`]) {
      for (const n of (await root.readdir(d)) ?? []) {
        const m = /^pip-([\d.]+)\.(dist|egg)-info$/.exec(n);
        if (m) add('pip', m[1], `${d}/${n}`);
      }
    }
    for (const gcc of ['x86_64-linux-gnu', 'aarch64-linux-gnu', 'x86_64-redhat-linux', 'x86_64-pc-linux-gnu']) {
      for (const n of (await root.readdir(`${prefix}/lib/gcc/${gcc}`)) ?? []) if (/^\d+(\.\d+)*$/.test(n)) add('gcc', n, `${prefix}/lib/gcc/${gcc}/${n}`);
    }
    for (const nd of (await root.readdir(`${prefix}/share/dotnet/shared/Microsoft.NETCore.App`)) ?? []) add('dotnet', nd, `${prefix}/share/dotnet`);
  }
  for (const goRoot of ['/usr/local/go', ...((await root.readdir('/usr/lib')) ?? []).filter((n) => /^go-\d/.test(n)).map((n) => `/usr/lib/${n}`)]) {
    const v = await text(`${goRoot}/VERSION`);
    if (v) add('go', v.split('\n')[0].trim().replace(/^go/, ''), `${goRoot}/bin/go`);
  }
  for (const n of ((await root.readdir('/usr/lib')) ?? []).filter((x) => /^llvm-\d+$/.test(x))) add('clang', n.slice(5), `/usr/lib/${n}`);
  for (const n of (await root.readdir('/usr/lib/jvm')) ?? []) {
    const rel = await text(`/usr/lib/jvm/${n}/release`);
    const v = rel ? /JAVA_VERSION="([^"]+)"/.exec(rel)?.[1] : /^(?:java-)?(\d+)/.exec(n)?.[1];
    if (v) add('java', v, `/usr/lib/jvm/${n}`);
  }
  for (const h of await homes(root)) {
    for (const n of (await root.readdir(`${h}/.rustup/toolchains`)) ?? []) {
      const man = await text(`${h}/.rustup/toolchains/${n}/lib/rustlib/multirust-channel-manifest.toml`);
      const v = man ? /\[pkg\.rustc\][^[]*?version\s*=\s*"([^" ]+)/.exec(man)?.[1] : null;
      add('rustc', v ?? n, `${h}/.rustup/toolchains/${n}`);
      if (man) add('cargo', /\[pkg\.cargo\][^[]*?version\s*=\s*"([^" ]+)/.exec(man)?.[1], `${h}/.rustup/toolchains/${n}`);
    }
    for (const n of (await root.readdir(`${h}/.nvm/versions/node`)) ?? []) add('node', n.replace(/^v/, ''), `${h}/.nvm/versions/node/${n}`);
  }
  // From the package list where the files say nothing
  const pkg = (names: string[]) => packages.find((p) => names.includes(p.name));
  const fromPkg: [string, string[]][] = [
    ['git', ['git']],
    ['docker', ['docker-ce', 'docker.io', 'docker', 'moby-engine']],
    ['node', ['nodejs']],
    ['python', ['python3']],
    ['go', ['golang-go', 'go']],
    ['rustc', ['rustc', 'rust']],
    ['cargo', ['cargo']],
    ['gcc', ['gcc']],
    ['clang', ['clang']],
    ['java', ['default-jdk', 'default-jre', 'openjdk-17-jdk', 'openjdk-21-jdk', 'jdk-openjdk']],
    ['dotnet', ['dotnet-sdk-8.0', 'dotnet-runtime-8.0', 'dotnet8']],
  ];
  for (const [name, names] of fromPkg) {
    if (out.some((t) => t.name === name)) continue;
    const p = pkg(names);
    if (p) add(name, p.version.replace(/^\d+:/, ''), `package ${p.name}`);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || compareVersions(a.version, b.version));
}
