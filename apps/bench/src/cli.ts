#!/usr/bin/env node
// ovq-bench: the project's main job. Today it runs the recall demo on its embedded defaults.
import { formatRecallDemo, runRecallDemo } from './recall-demo.js';

console.log(formatRecallDemo(runRecallDemo()));
