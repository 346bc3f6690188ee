// `devsnap init`: create an empty repository.
import { Command, Option } from 'commander';
import { DevsnapError } from '../../core/errors';
import { Repository, DEFAULT_CHUNK_SIZE } from '../../repo/repository';
import { intArg, type CommandContext } from '../context';
import { initText } from '../print/repository';

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('init')
    .description('create an empty repository (snapshot creates one too when the folder is new)')
    .addOption(new Option('--chunk-size <bytes>', 'chunk size').argParser(intArg('--chunk-size')).default(DEFAULT_CHUNK_SIZE))
    .addOption(new Option('--compression <level>', 'zstd level 1-19').argParser(intArg('--compression')).default(3))
    .addOption(new Option('--pack-size <bytes>', 'target size of pack files').argParser(intArg('--pack-size')).default(32 << 20))
    .option('--encrypt', 'encrypt with the password from --password-file / $DEVSNAP_PASSWORD')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      if (o.encrypt && !ctx.password(g)) throw new DevsnapError('USAGE', '--encrypt needs a password.', 'Set DEVSNAP_PASSWORD or pass --password-file FILE.');
      // An unencrypted repository refuses every command given a password: do not create one that way.
      if (!o.encrypt && ctx.password(g))
        throw new DevsnapError(
          'USAGE',
          'A password is given (DEVSNAP_PASSWORD or --password-file) but not --encrypt.',
          'Add --encrypt for an encrypted repository, or unset the password for an unencrypted one.',
        );
      const repo = await Repository.init(ctx.repoDir(g), { chunkSize: o.chunkSize, packSize: o.packSize, level: o.compression, password: o.encrypt ? ctx.password(g) : undefined }, ctx.log);
      ctx.report(g, { repository: repo.dir, config: { ...repo.config, encryption: repo.config.encryption ? 'scrypt+aes-256-gcm' : null } }, () => initText(repo.dir, repo.cipher.encrypted));
    });
}
