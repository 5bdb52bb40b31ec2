// Allows every outbound flow from an async hook that yields once first:
// the cost of a promise answer (the benchmark's second policy case).
/** @type {import('passt').Policy} */
export default {
  /** @returns {Promise<import('passt').Verdict>} */
  async outbound() {
    await null;
    return 'allow';
  },
};
