#!/usr/bin/env node
// ovq-train: train, evaluate and sample hybrid OVQ models from the command line. Exit codes: 0 done,
// 1 failed (e.g. a corrupt checkpoint, training stopped), 2 usage error, 130 interrupted (saved).
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`ovq-train: ${error.message}\n`);
    process.exitCode = 1;
  },
);
