// Hardhat 2 configuration for the Provenant contracts.
//
// The machine cannot download compilers, so the solc build is taken from the npm `solc`
// package (solc-js) whenever its version is the one requested; any other version falls back
// to Hardhat's own (downloading) resolution and will fail loudly offline.
require("@nomicfoundation/hardhat-chai-matchers");
require("@nomicfoundation/hardhat-ethers");

const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");

const SOLC_VERSION = "0.8.30";
const PROVENANT_RPC_URL = process.env.PROVENANT_RPC_URL || "http://127.0.0.1:8545";

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  const installed = require("solc/package.json").version;
  if (args.solcVersion !== installed) {
    return runSuper();
  }
  const solc = require("solc");
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: args.solcVersion,
    longVersion: solc.version(),
  };
});

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      // Cancun opcodes (MCOPY, TSTORE) are live on every current EVM chain; later forks are not.
      evmVersion: "cancun",
    },
  },
  paths: {
    sources: "./contracts",
    tests: "./tests/contracts",
    cache: "./cache",
    artifacts: "./artifacts",
  },
  networks: {
    hardhat: { chainId: 31337 },
    localhost: { url: PROVENANT_RPC_URL },
    provenant: { url: PROVENANT_RPC_URL },
  },
  mocha: { timeout: 60000 },
};
