export { componentNllDerivatives, hardAssign, newtonStep } from './em.js';
export {
  componentLogDensity,
  conditionalMean,
  type GaussianMixture,
  mixtureFromDictionary,
  responsibilities,
} from './mixture.js';
