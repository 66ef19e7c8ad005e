export type * from './ovq/types.js';
