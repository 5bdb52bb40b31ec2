#!/usr/bin/env node
// pasta: user-mode networking for a network namespace, through a tap.
import { run } from './common.js';

run('pasta');
