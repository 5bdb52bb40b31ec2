#!/usr/bin/env node
// passt: user-mode networking for a qemu guest on a UNIX socket.
import { run } from './common.js';

run('passt');
