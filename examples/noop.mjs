// Allows every outbound flow, answering at once: the cost of asking JS
// at all (the benchmark's baseline for policy hooks).
/** @type {import('passt').Policy} */
export default {
  outbound() {
    return 'allow';
  },
};
