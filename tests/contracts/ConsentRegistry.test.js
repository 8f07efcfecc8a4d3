const { expect } = require("chai");
const { ethers } = require("hardhat");
const { loadFixture, setBalance, time } = require("@nomicfoundation/hardhat-network-helpers");

// The EIP-712 types the backend signs and hashes; they must match the contract's type hashes.
const CONSENT_TYPES = {
  Consent: [
    { name: "contributor", type: "address" },
    { name: "termsVersion", type: "uint32" },
    { name: "termsHash", type: "bytes32" },
    { name: "scopes", type: "uint64" },
    { name: "royaltyBps", type: "uint16" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};
const REVOCATION_TYPES = {
  Revocation: [
    { name: "contributor", type: "address" },
    { name: "consentHash", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

const TERMS_HASH = ethers.id("Provenant data-use terms v1");
const SCOPES = 0b101n;
const ROYALTY_BPS = 250n;
// A fixed deadline keeps every signed message, hence every calldata byte and gas figure, stable.
const FAR_DEADLINE = 4_000_000_000n;

async function domainOf(registry, overrides = {}) {
  const { chainId } = await ethers.provider.getNetwork();
  return {
    name: "Provenant ConsentRegistry",
    version: "1",
    chainId,
    verifyingContract: await registry.getAddress(),
    ...overrides,
  };
}

/** Signs a consent with `signer`; returns the message, the signature and its EIP-712 hash. */
async function signConsent(signer, registry, fields = {}, domainOverrides = {}) {
  const contributor = fields.contributor ?? signer.address;
  const value = {
    contributor,
    termsVersion: 1n,
    termsHash: TERMS_HASH,
    scopes: SCOPES,
    royaltyBps: ROYALTY_BPS,
    nonce: await registry.nonces(contributor),
    deadline: FAR_DEADLINE,
    ...fields,
  };
  const domain = await domainOf(registry, domainOverrides);
  const signature = await signer.signTypedData(domain, CONSENT_TYPES, value);
  const hash = ethers.TypedDataEncoder.hash(domain, CONSENT_TYPES, value);
  return { value, signature, hash };
}

/** Signs a revocation of `consentHash` with `signer`. */
async function signRevocation(signer, registry, consentHash, fields = {}) {
  const contributor = fields.contributor ?? signer.address;
  const value = {
    contributor,
    consentHash,
    nonce: await registry.nonces(contributor),
    deadline: FAR_DEADLINE,
    ...fields,
  };
  const signature = await signer.signTypedData(await domainOf(registry), REVOCATION_TYPES, value);
  return { value, signature };
}

function consentArgs({ value, signature }) {
  return [
    value.contributor,
    value.termsVersion,
    value.termsHash,
    value.scopes,
    value.royaltyBps,
    value.nonce,
    value.deadline,
    signature,
  ];
}

function revocationArgs({ value, signature }) {
  return [value.contributor, value.consentHash, value.nonce, value.deadline, signature];
}

describe("ConsentRegistry", function () {
  async function deployFixture() {
    const [admin, operator, alice, bob, mallory] = await ethers.getSigners();
    const registry = await ethers.deployContract("ConsentRegistry", [admin.address, operator.address]);
    await registry.waitForDeployment();
    return { registry, admin, operator, alice, bob, mallory };
  }

  async function recordedFixture() {
    const base = await deployFixture();
    const { registry, operator, alice } = base;
    const signed = await signConsent(alice, registry);
    await registry.connect(operator).recordConsent(...consentArgs(signed));
    return { ...base, consentHash: signed.hash };
  }

  describe("deployment", function () {
    it("grants the admin and relayer roles", async function () {
      const { registry, admin, operator, alice } = await loadFixture(deployFixture);
      expect(await registry.hasRole(await registry.DEFAULT_ADMIN_ROLE(), admin.address)).to.equal(true);
      expect(await registry.hasRole(await registry.RELAYER_ROLE(), operator.address)).to.equal(true);
      expect(await registry.hasRole(await registry.RELAYER_ROLE(), alice.address)).to.equal(false);
    });

    it("exposes the type hashes and domain separator the backend computes", async function () {
      const { registry } = await loadFixture(deployFixture);
      expect(await registry.RELAYER_ROLE()).to.equal(ethers.id("RELAYER_ROLE"));
      expect(await registry.CONSENT_TYPEHASH()).to.equal(
        ethers.id(ethers.TypedDataEncoder.from(CONSENT_TYPES).encodeType("Consent")),
      );
      expect(await registry.REVOCATION_TYPEHASH()).to.equal(
        ethers.id(ethers.TypedDataEncoder.from(REVOCATION_TYPES).encodeType("Revocation")),
      );
      expect(await registry.DOMAIN_SEPARATOR()).to.equal(ethers.TypedDataEncoder.hashDomain(await domainOf(registry)));
    });
  });

  describe("recordConsent", function () {
    it("records a consent relayed by the operator with the contributor's signature", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry);

      expect(await registry.connect(operator).recordConsent.staticCall(...consentArgs(signed))).to.equal(signed.hash);
      const tx = registry.connect(operator).recordConsent(...consentArgs(signed));
      await expect(tx)
        .to.emit(registry, "ConsentRecorded")
        .withArgs(alice.address, signed.hash, 1n, TERMS_HASH, SCOPES, ROYALTY_BPS, 0n);

      const recordedAt = BigInt(await time.latest());
      const record = await registry.consentRecord(signed.hash);
      expect(record.contributor).to.equal(alice.address);
      expect(record.termsVersion).to.equal(1n);
      expect(record.scopes).to.equal(SCOPES);
      expect(record.royaltyBps).to.equal(ROYALTY_BPS);
      expect(record.recordedAt).to.equal(recordedAt);
      expect(record.revokedAt).to.equal(0n);
      expect(record.termsHash).to.equal(TERMS_HASH);
      expect(await registry.nonces(alice.address)).to.equal(1n);
      expect(await registry.isConsentActive(signed.hash)).to.equal(true);
      expect(await registry.activeConsentOf(alice.address)).to.equal(signed.hash);
    });

    it("lets the contributor submit their own consent", async function () {
      const { registry, alice } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry);
      await expect(registry.connect(alice).recordConsent(...consentArgs(signed)))
        .to.emit(registry, "ConsentRecorded")
        .withArgs(alice.address, signed.hash, 1n, TERMS_HASH, SCOPES, ROYALTY_BPS, 0n);
    });

    it("rejects a caller that is neither relayer nor contributor", async function () {
      const { registry, alice, mallory } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry);
      await expect(registry.connect(mallory).recordConsent(...consentArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryUnauthorizedRelayer")
        .withArgs(mallory.address);
    });

    it("accepts a relayer granted later by the admin", async function () {
      const { registry, admin, alice, mallory } = await loadFixture(deployFixture);
      await registry.connect(admin).grantRole(await registry.RELAYER_ROLE(), mallory.address);
      const signed = await signConsent(alice, registry);
      await expect(registry.connect(mallory).recordConsent(...consentArgs(signed))).to.emit(
        registry,
        "ConsentRecorded",
      );
    });

    it("rejects a consent signed by someone other than the contributor", async function () {
      const { registry, operator, alice, mallory } = await loadFixture(deployFixture);
      const forged = await signConsent(mallory, registry, { contributor: alice.address });
      await expect(registry.connect(operator).recordConsent(...consentArgs(forged)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);
    });

    it("rejects a signature over different fields than those submitted", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry);
      const tampered = { ...signed, value: { ...signed.value, royaltyBps: 9_000n } };
      await expect(registry.connect(operator).recordConsent(...consentArgs(tampered)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);
    });

    it("rejects a malformed signature", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry);
      const truncated = { ...signed, signature: ethers.dataSlice(signed.signature, 0, 64) };
      await expect(registry.connect(operator).recordConsent(...consentArgs(truncated)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);
    });

    it("rejects a signature for another chain id", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry, {}, { chainId: 1n });
      await expect(registry.connect(operator).recordConsent(...consentArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);
    });

    it("rejects a signature for another registry", async function () {
      const { registry, admin, operator, alice } = await loadFixture(deployFixture);
      const other = await ethers.deployContract("ConsentRegistry", [admin.address, operator.address]);
      const signed = await signConsent(alice, other);
      await expect(registry.connect(operator).recordConsent(...consentArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);
      await expect(other.connect(operator).recordConsent(...consentArgs(signed))).to.emit(other, "ConsentRecorded");
    });

    it("rejects a nonce other than the current one", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry, { nonce: 1n });
      await expect(registry.connect(operator).recordConsent(...consentArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidNonce")
        .withArgs(alice.address, 0n);
    });

    it("rejects a replay of a recorded consent", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry);
      await registry.connect(operator).recordConsent(...consentArgs(signed));
      await expect(registry.connect(operator).recordConsent(...consentArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidNonce")
        .withArgs(alice.address, 1n);
    });

    it("accepts a signature up to and including its deadline, then rejects it", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const deadline = BigInt(await time.latest()) + 100n;
      const signed = await signConsent(alice, registry, { deadline });

      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(registry.connect(operator).recordConsent(...consentArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryExpiredSignature")
        .withArgs(deadline);

      const { registry: fresh } = await loadFixture(deployFixture);
      const onTime = await signConsent(alice, fresh, { deadline });
      await time.setNextBlockTimestamp(deadline);
      await expect(fresh.connect(operator).recordConsent(...consentArgs(onTime))).to.emit(fresh, "ConsentRecorded");
    });

    it("rejects empty scopes", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const signed = await signConsent(alice, registry, { scopes: 0n });
      await expect(
        registry.connect(operator).recordConsent(...consentArgs(signed)),
      ).to.be.revertedWithCustomError(registry, "ConsentRegistryEmptyScopes");
    });

    it("accepts a royalty of exactly 10000 bps and rejects more", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const tooHigh = await signConsent(alice, registry, { royaltyBps: 10_001n });
      await expect(registry.connect(operator).recordConsent(...consentArgs(tooHigh)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidRoyalty")
        .withArgs(10_001n);

      const max = await signConsent(alice, registry, { royaltyBps: 10_000n });
      await expect(registry.connect(operator).recordConsent(...consentArgs(max))).to.emit(registry, "ConsentRecorded");
    });

    it("makes the newest consent the active one while the older stays in force", async function () {
      const { registry, operator, alice, consentHash } = await loadFixture(recordedFixture);
      const second = await signConsent(alice, registry, { termsVersion: 2n });
      await registry.connect(operator).recordConsent(...consentArgs(second));

      expect(await registry.activeConsentOf(alice.address)).to.equal(second.hash);
      expect(await registry.isConsentActive(consentHash)).to.equal(true);
      expect(await registry.nonces(alice.address)).to.equal(2n);
    });

    it("returns an empty record and inactive status for an unknown hash", async function () {
      const { registry, bob } = await loadFixture(deployFixture);
      const unknown = ethers.id("unknown");
      const record = await registry.consentRecord(unknown);
      expect(record.contributor).to.equal(ethers.ZeroAddress);
      expect(record.recordedAt).to.equal(0n);
      expect(await registry.isConsentActive(unknown)).to.equal(false);
      expect(await registry.activeConsentOf(bob.address)).to.equal(ethers.ZeroHash);
    });
  });

  describe("revokeConsent", function () {
    it("revokes a consent on the contributor's signed request", async function () {
      const { registry, operator, alice, consentHash } = await loadFixture(recordedFixture);
      const signed = await signRevocation(alice, registry, consentHash);

      await expect(registry.connect(operator).revokeConsent(...revocationArgs(signed)))
        .to.emit(registry, "ConsentRevoked")
        .withArgs(alice.address, consentHash, 1n);

      const record = await registry.consentRecord(consentHash);
      expect(record.revokedAt).to.equal(BigInt(await time.latest()));
      expect(record.contributor).to.equal(alice.address);
      expect(await registry.isConsentActive(consentHash)).to.equal(false);
      expect(await registry.activeConsentOf(alice.address)).to.equal(ethers.ZeroHash);
      expect(await registry.nonces(alice.address)).to.equal(2n);
    });

    it("lets the contributor revoke directly", async function () {
      const { registry, alice, consentHash } = await loadFixture(recordedFixture);
      const signed = await signRevocation(alice, registry, consentHash);
      await expect(registry.connect(alice).revokeConsent(...revocationArgs(signed)))
        .to.emit(registry, "ConsentRevoked")
        .withArgs(alice.address, consentHash, 1n);
    });

    it("keeps the active consent when an older one is revoked", async function () {
      const { registry, operator, alice, consentHash } = await loadFixture(recordedFixture);
      const second = await signConsent(alice, registry, { termsVersion: 2n });
      await registry.connect(operator).recordConsent(...consentArgs(second));

      const signed = await signRevocation(alice, registry, consentHash);
      await registry.connect(operator).revokeConsent(...revocationArgs(signed));
      expect(await registry.isConsentActive(consentHash)).to.equal(false);
      expect(await registry.activeConsentOf(alice.address)).to.equal(second.hash);
    });

    it("rejects a revocation not signed by the contributor", async function () {
      const { registry, operator, alice, mallory, consentHash } = await loadFixture(recordedFixture);
      const forged = await signRevocation(mallory, registry, consentHash, { contributor: alice.address });
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(forged)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);
      expect(await registry.isConsentActive(consentHash)).to.equal(true);
    });

    it("rejects a caller that is neither relayer nor contributor", async function () {
      const { registry, alice, mallory, consentHash } = await loadFixture(recordedFixture);
      const signed = await signRevocation(alice, registry, consentHash);
      await expect(registry.connect(mallory).revokeConsent(...revocationArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryUnauthorizedRelayer")
        .withArgs(mallory.address);
    });

    it("rejects an expired revocation", async function () {
      const { registry, operator, alice, consentHash } = await loadFixture(recordedFixture);
      const deadline = BigInt(await time.latest()) + 10n;
      const signed = await signRevocation(alice, registry, consentHash, { deadline });
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryExpiredSignature")
        .withArgs(deadline);
    });

    it("rejects a revocation with a stale nonce and a replayed revocation", async function () {
      const { registry, operator, alice, consentHash } = await loadFixture(recordedFixture);
      const stale = await signRevocation(alice, registry, consentHash, { nonce: 0n });
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(stale)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidNonce")
        .withArgs(alice.address, 1n);

      const signed = await signRevocation(alice, registry, consentHash);
      await registry.connect(operator).revokeConsent(...revocationArgs(signed));
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidNonce")
        .withArgs(alice.address, 2n);
    });

    it("rejects revoking an unknown consent", async function () {
      const { registry, operator, alice } = await loadFixture(recordedFixture);
      const unknown = ethers.id("never recorded");
      const signed = await signRevocation(alice, registry, unknown);
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryUnknownConsent")
        .withArgs(unknown);
    });

    it("rejects revoking another contributor's consent", async function () {
      const { registry, operator, bob, consentHash } = await loadFixture(recordedFixture);
      const signed = await signRevocation(bob, registry, consentHash);
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryNotContributor")
        .withArgs(consentHash, bob.address);
      expect(await registry.isConsentActive(consentHash)).to.equal(true);
    });

    it("rejects revoking a consent twice", async function () {
      const { registry, operator, alice, consentHash } = await loadFixture(recordedFixture);
      await registry.connect(operator).revokeConsent(...revocationArgs(await signRevocation(alice, registry, consentHash)));
      const again = await signRevocation(alice, registry, consentHash);
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(again)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryAlreadyRevoked")
        .withArgs(consentHash);
    });
  });

  describe("ERC-1271 contributors", function () {
    async function walletFixture() {
      const base = await deployFixture();
      const wallet = await ethers.deployContract("MockERC1271Wallet", [base.alice.address]);
      return { ...base, wallet, walletAddress: await wallet.getAddress() };
    }

    it("records and revokes a consent signed by a smart wallet's owner", async function () {
      const { registry, operator, alice, walletAddress } = await loadFixture(walletFixture);
      const signed = await signConsent(alice, registry, { contributor: walletAddress });
      await expect(registry.connect(operator).recordConsent(...consentArgs(signed)))
        .to.emit(registry, "ConsentRecorded")
        .withArgs(walletAddress, signed.hash, 1n, TERMS_HASH, SCOPES, ROYALTY_BPS, 0n);
      expect(await registry.activeConsentOf(walletAddress)).to.equal(signed.hash);
      expect(await registry.nonces(walletAddress)).to.equal(1n);

      const revocation = await signRevocation(alice, registry, signed.hash, { contributor: walletAddress });
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(revocation)))
        .to.emit(registry, "ConsentRevoked")
        .withArgs(walletAddress, signed.hash, 1n);
      expect(await registry.isConsentActive(signed.hash)).to.equal(false);
    });

    it("rejects a signature the wallet does not accept", async function () {
      const { registry, operator, mallory, walletAddress } = await loadFixture(walletFixture);
      const forged = await signConsent(mallory, registry, { contributor: walletAddress });
      await expect(registry.connect(operator).recordConsent(...consentArgs(forged)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(walletAddress);
    });
  });

  describe("gas", function () {
    // Pinned figures for the relayed hot paths, as the operator pays them on every consent.
    // A change here must be deliberate: update the number in the same commit that explains it.
    // The signatures, hence the calldata cost, depend on the registry's address; deploying from a
    // dedicated key at nonce 0 keeps that address fixed whichever tests ran first.
    async function gasFixture() {
      const [admin, operator, alice] = await ethers.getSigners();
      const deployer = new ethers.Wallet(ethers.id("provenant gas-test deployer"), ethers.provider);
      await setBalance(deployer.address, ethers.parseEther("10"));
      const registry = await ethers.deployContract("ConsentRegistry", [admin.address, operator.address], deployer);
      await registry.waitForDeployment();
      return { registry, operator, alice };
    }

    it("pins the gas of a relayed recordConsent and revokeConsent", async function () {
      const { registry, operator, alice } = await loadFixture(gasFixture);

      // Operator relays a 65-byte EOA signature; first consent for this contributor (nonce 0 -> 1,
      // fresh record and active-consent slots).
      const signed = await signConsent(alice, registry);
      expect(ethers.dataLength(signed.signature)).to.equal(65);
      const recordReceipt = await (await registry.connect(operator).recordConsent(...consentArgs(signed))).wait();
      expect(recordReceipt.gasUsed).to.equal(150_813n);

      // Operator relays the revocation of that (active) consent: nonce 1 -> 2, active slot cleared.
      const revocation = await signRevocation(alice, registry, signed.hash);
      const revokeReceipt = await (await registry.connect(operator).revokeConsent(...revocationArgs(revocation))).wait();
      expect(revokeReceipt.gasUsed).to.equal(49_074n);
    });
  });
});
