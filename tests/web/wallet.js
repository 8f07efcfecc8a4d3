// An EIP-1193 provider injected into the page for the browser tests, announced by EIP-6963
// and set as window.ethereum. Every request goes to the test (the exposed binding
// __provenantWallet), which answers for its account and forwards the rest to the Hardhat node;
// the node signs personal_sign, eth_signTypedData_v4 and eth_sendTransaction itself.
(() => {
  const listeners = {};
  const provider = {
    isProvenantTestWallet: true,
    async request({ method, params }) {
      const reply = await window.__provenantWallet(method, params ?? []);
      if (reply && reply.error) {
        const error = new Error(reply.error.message);
        error.code = reply.error.code;
        throw error;
      }
      return reply.result;
    },
    on(event, fn) {
      (listeners[event] ??= []).push(fn);
    },
    removeListener(event, fn) {
      listeners[event] = (listeners[event] ?? []).filter((f) => f !== fn);
    },
  };
  const info = {
    uuid: "8d6f5b0e-4c1a-4b7e-9d1f-provenant-test",
    name: "Test wallet",
    icon: "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>",
    rdns: "dev.provenant.testwallet",
  };
  const announce = () =>
    window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
  window.ethereum = provider;
})();
