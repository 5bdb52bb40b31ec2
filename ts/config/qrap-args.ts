// qrap's command line (man qrap): FDNUM QEMU_CMD [QEMU_ARG]...

export const USAGE = 'Usage: qrap FDNUM QEMU_CMD [QEMU_ARG]...\n';

export function parseQrapArgs(argv: string[]): { fd: number; command: string[] } | 'help' {
  if (argv[0] === '-h' || argv[0] === '--help') return 'help';
  const [fdText, ...command] = argv;
  if (fdText === undefined || !/^\d+$/.test(fdText)) {
    throw new Error(`FDNUM: '${fdText ?? ''}' is not a descriptor number (the command-line patching form is not supported)`);
  }
  const fd = Number(fdText);
  if (fd < 3 || fd > 1023) throw new Error(`FDNUM: ${fd} out of range (3-1023)`);
  if (!command.length) throw new Error('QEMU_CMD: missing');
  return { fd, command };
}

