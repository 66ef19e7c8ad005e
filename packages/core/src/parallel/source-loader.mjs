// `--import` entry for pool workers running from TypeScript sources (see source-hooks.mjs).
import { register } from 'node:module';

register('./source-hooks.mjs', import.meta.url);
