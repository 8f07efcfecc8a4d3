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
// The consent with an end date: the same fields plus `validUntil`, in the same domain.
const CONSENT_V2_TYPES = {
  ConsentV2: [
    { name: "contributor", type: "address" },
    { name: "termsVersion", type: "uint32" },
    { name: "termsHash", type: "bytes32" },
    { name: "scopes", type: "uint64" },
    { name: "royaltyBps", type: "uint16" },
    { name: "validUntil", type: "uint64" },
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
const FAR_VALID_UNTIL = 3_900_000_000n;

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

/** Signs a consent with an end date (`ConsentV2`); `validUntil` defaults to a far future. */
async function signConsentV2(signer, registry, fields = {}) {
  const contributor = fields.contributor ?? signer.address;
  const value = {
    contributor,
    termsVersion: 1n,
    termsHash: TERMS_HASH,
    scopes: SCOPES,
    royaltyBps: ROYALTY_BPS,
    validUntil: FAR_VALID_UNTIL,
    nonce: await registry.nonces(contributor),
    deadline: FAR_DEADLINE,
    ...fields,
  };
  const domain = await domainOf(registry);
  const signature = await signer.signTypedData(domain, CONSENT_V2_TYPES, value);
  const hash = ethers.TypedDataEncoder.hash(domain, CONSENT_V2_TYPES, value);
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

function consentV2Args({ value, signature }) {
  return [
    value.contributor,
    value.termsVersion,
    value.termsHash,
    value.scopes,
    value.royaltyBps,
    value.validUntil,
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
      expect(await registry.CONSENT_V2_TYPEHASH()).to.equal(
        ethers.id(ethers.TypedDataEncoder.from(CONSENT_V2_TYPES).encodeType("ConsentV2")),
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
      expect(record.validUntil).to.equal(0n);
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

  describe("recordConsentV2", function () {
    it("records a consent with an end date, readable in the record and announced by an event", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const signed = await signConsentV2(alice, registry);

      expect(await registry.connect(operator).recordConsentV2.staticCall(...consentV2Args(signed))).to.equal(
        signed.hash,
      );
      const tx = registry.connect(operator).recordConsentV2(...consentV2Args(signed));
      await expect(tx)
        .to.emit(registry, "ConsentRecorded")
        .withArgs(alice.address, signed.hash, 1n, TERMS_HASH, SCOPES, ROYALTY_BPS, 0n)
        .and.to.emit(registry, "ConsentEndDate")
        .withArgs(alice.address, signed.hash, FAR_VALID_UNTIL);

      const record = await registry.consentRecord(signed.hash);
      expect(record.contributor).to.equal(alice.address);
      expect(record.termsVersion).to.equal(1n);
      expect(record.scopes).to.equal(SCOPES);
      expect(record.royaltyBps).to.equal(ROYALTY_BPS);
      expect(record.recordedAt).to.equal(BigInt(await time.latest()));
      expect(record.revokedAt).to.equal(0n);
      expect(record.validUntil).to.equal(FAR_VALID_UNTIL);
      expect(record.termsHash).to.equal(TERMS_HASH);
      // The backend reads the struct by position: recordedAt and revokedAt keep theirs.
      expect(record[4]).to.equal(record.recordedAt);
      expect(record[5]).to.equal(0n);
      expect(record[6]).to.equal(FAR_VALID_UNTIL);
      expect(await registry.nonces(alice.address)).to.equal(1n);
      expect(await registry.isConsentActive(signed.hash)).to.equal(true);
      expect(await registry.activeConsentOf(alice.address)).to.equal(signed.hash);
    });

    it("records a consent without end date (validUntil 0) and emits no end-date event", async function () {
      const { registry, alice } = await loadFixture(deployFixture);
      const signed = await signConsentV2(alice, registry, { validUntil: 0n });
      const tx = registry.connect(alice).recordConsentV2(...consentV2Args(signed));
      await expect(tx).to.emit(registry, "ConsentRecorded");
      await expect(tx).not.to.emit(registry, "ConsentEndDate");
      expect((await registry.consentRecord(signed.hash)).validUntil).to.equal(0n);
      await time.increaseTo(FAR_VALID_UNTIL + 1n);
      expect(await registry.isConsentActive(signed.hash)).to.equal(true);
    });

    it("refuses an end date at or before the current block and accepts one a second later", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const now = BigInt(await time.latest()) + 10n;
      const past = await signConsentV2(alice, registry, { validUntil: now - 5n });
      await time.setNextBlockTimestamp(now);
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(past)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryEndInPast")
        .withArgs(now - 5n);

      const same = await signConsentV2(alice, registry, { validUntil: now + 1n });
      await time.setNextBlockTimestamp(now + 1n);
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(same)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryEndInPast")
        .withArgs(now + 1n);

      const next = await signConsentV2(alice, registry, { validUntil: now + 3n });
      await time.setNextBlockTimestamp(now + 2n);
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(next)))
        .to.emit(registry, "ConsentEndDate")
        .withArgs(alice.address, next.hash, now + 3n);
      expect(await registry.nonces(alice.address)).to.equal(1n);
    });

    it("applies the consent rules of recordConsent", async function () {
      const { registry, operator, alice, mallory } = await loadFixture(deployFixture);
      const signed = await signConsentV2(alice, registry);
      await expect(registry.connect(mallory).recordConsentV2(...consentV2Args(signed)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryUnauthorizedRelayer")
        .withArgs(mallory.address);

      const forged = await signConsentV2(mallory, registry, { contributor: alice.address });
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(forged)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);

      const tampered = { ...signed, value: { ...signed.value, validUntil: signed.value.validUntil + 1n } };
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(tampered)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);

      const empty = await signConsentV2(alice, registry, { scopes: 0n });
      await expect(
        registry.connect(operator).recordConsentV2(...consentV2Args(empty)),
      ).to.be.revertedWithCustomError(registry, "ConsentRegistryEmptyScopes");

      const tooHigh = await signConsentV2(alice, registry, { royaltyBps: 10_001n });
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(tooHigh)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidRoyalty")
        .withArgs(10_001n);

      const deadline = BigInt(await time.latest()) + 100n;
      const late = await signConsentV2(alice, registry, { deadline });
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(late)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryExpiredSignature")
        .withArgs(deadline);

      const wrongNonce = await signConsentV2(alice, registry, { nonce: 3n });
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(wrongNonce)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidNonce")
        .withArgs(alice.address, 0n);
    });

    it("does not take a version-1 signature for a consent without end date, nor the reverse", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const v1 = await signConsent(alice, registry);
      const asV2 = { value: { ...v1.value, validUntil: 0n }, signature: v1.signature };
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(asV2)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);

      const v2 = await signConsentV2(alice, registry, { validUntil: 0n });
      await expect(registry.connect(operator).recordConsent(...consentArgs(v2)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(alice.address);
    });

    it("shares the nonce sequence with version-1 consents and revocations", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const first = await signConsent(alice, registry);
      await registry.connect(operator).recordConsent(...consentArgs(first));
      const second = await signConsentV2(alice, registry);
      expect(second.value.nonce).to.equal(1n);
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(second)))
        .to.emit(registry, "ConsentRecorded")
        .withArgs(alice.address, second.hash, 1n, TERMS_HASH, SCOPES, ROYALTY_BPS, 1n);
      // A replay, and a version-1 consent signed with the nonce the V2 consent used, both fail.
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(second)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidNonce")
        .withArgs(alice.address, 2n);
      const stale = await signConsent(alice, registry, { nonce: 1n });
      await expect(registry.connect(operator).recordConsent(...consentArgs(stale)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidNonce")
        .withArgs(alice.address, 2n);

      const revocation = await signRevocation(alice, registry, second.hash);
      expect(revocation.value.nonce).to.equal(2n);
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(revocation)))
        .to.emit(registry, "ConsentRevoked")
        .withArgs(alice.address, second.hash, 2n);
      expect(await registry.isConsentActive(second.hash)).to.equal(false);
      expect(await registry.isConsentActive(first.hash)).to.equal(true);
      expect(await registry.activeConsentOf(alice.address)).to.equal(ethers.ZeroHash);
      expect(await registry.nonces(alice.address)).to.equal(3n);
    });

    it("stops being active after its end date, to the second", async function () {
      const { registry, operator, alice } = await loadFixture(deployFixture);
      const validUntil = BigInt(await time.latest()) + 1_000n;
      const signed = await signConsentV2(alice, registry, { validUntil });
      await registry.connect(operator).recordConsentV2(...consentV2Args(signed));

      await time.increaseTo(validUntil);
      expect(await registry.isConsentActive(signed.hash)).to.equal(true);
      expect(await registry.activeConsentOf(alice.address)).to.equal(signed.hash);
      await time.increaseTo(validUntil + 1n);
      expect(await registry.isConsentActive(signed.hash)).to.equal(false);
      expect(await registry.activeConsentOf(alice.address)).to.equal(ethers.ZeroHash);

      // An ended consent can still be revoked (the record then says so too).
      const revocation = await signRevocation(alice, registry, signed.hash);
      await expect(registry.connect(operator).revokeConsent(...revocationArgs(revocation))).to.emit(
        registry,
        "ConsentRevoked",
      );
      expect((await registry.consentRecord(signed.hash)).revokedAt).to.equal(BigInt(await time.latest()));
    });

    it("records a consent with an end date for an ERC-1271 contributor", async function () {
      const { registry, operator, alice, mallory } = await loadFixture(deployFixture);
      const wallet = await ethers.deployContract("MockERC1271Wallet", [alice.address]);
      const walletAddress = await wallet.getAddress();
      const signed = await signConsentV2(alice, registry, { contributor: walletAddress });
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(signed)))
        .to.emit(registry, "ConsentEndDate")
        .withArgs(walletAddress, signed.hash, FAR_VALID_UNTIL);
      const forged = await signConsentV2(mallory, registry, { contributor: walletAddress });
      await expect(registry.connect(operator).recordConsentV2(...consentV2Args(forged)))
        .to.be.revertedWithCustomError(registry, "ConsentRegistryInvalidSignature")
        .withArgs(walletAddress);
    });
  });

  describe("consentInForceAt", function () {
    /** alice's consent with end date E, recorded at R and revoked at V = E - 100. */
    async function lifecycleFixture() {
      const base = await deployFixture();
      const { registry, operator, alice } = base;
      const recordedAt = BigInt(await time.latest()) + 100n;
      const validUntil = recordedAt + 1_000n;
      const signed = await signConsentV2(alice, registry, { validUntil, scopes: 0b1011n });
      await time.setNextBlockTimestamp(recordedAt);
      await registry.connect(operator).recordConsentV2(...consentV2Args(signed));
      return { ...base, consentHash: signed.hash, recordedAt, validUntil };
    }

    it("is true from recordedAt to validUntil inclusive, false outside", async function () {
      const { registry, consentHash, recordedAt, validUntil } = await loadFixture(lifecycleFixture);
      const at = (t, scope = 0b1n) => registry.consentInForceAt(consentHash, t, scope);
      expect(await at(0n)).to.equal(false);
      expect(await at(recordedAt - 1n)).to.equal(false);
      expect(await at(recordedAt)).to.equal(true);
      expect(await at(validUntil - 1n)).to.equal(true);
      expect(await at(validUntil)).to.equal(true);
      expect(await at(validUntil + 1n)).to.equal(false);
      expect(await at(2n ** 64n - 1n)).to.equal(false);
    });

    it("requires every bit of the scope asked about", async function () {
      const { registry, consentHash, recordedAt } = await loadFixture(lifecycleFixture);
      const at = (scope) => registry.consentInForceAt(consentHash, recordedAt, scope);
      for (const scope of [0b1n, 0b10n, 0b1000n, 0b1011n, 0b11n, 0n]) {
        expect(await at(scope)).to.equal(true);
      }
      for (const scope of [0b100n, 0b111n, 0b1111n, 2n ** 63n]) {
        expect(await at(scope)).to.equal(false);
      }
    });

    it("is false from the revocation's timestamp on, and true before it", async function () {
      const { registry, operator, alice, consentHash, recordedAt, validUntil } = await loadFixture(lifecycleFixture);
      const revokedAt = validUntil - 100n;
      const revocation = await signRevocation(alice, registry, consentHash);
      await time.setNextBlockTimestamp(revokedAt);
      await registry.connect(operator).revokeConsent(...revocationArgs(revocation));

      const at = (t) => registry.consentInForceAt(consentHash, t, 0b1n);
      expect(await at(recordedAt)).to.equal(true);
      expect(await at(revokedAt - 1n)).to.equal(true);
      expect(await at(revokedAt)).to.equal(false);
      expect(await at(validUntil)).to.equal(false);
      expect(await registry.isConsentActive(consentHash)).to.equal(false);
    });

    it("answers for version-1 consents (no end date) and unknown hashes", async function () {
      const { registry, operator, bob } = await loadFixture(deployFixture);
      const signed = await signConsent(bob, registry);
      await registry.connect(operator).recordConsent(...consentArgs(signed));
      const recordedAt = BigInt(await time.latest());
      expect(await registry.consentInForceAt(signed.hash, recordedAt, SCOPES)).to.equal(true);
      expect(await registry.consentInForceAt(signed.hash, 2n ** 64n - 1n, 0b1n)).to.equal(true);
      expect(await registry.consentInForceAt(signed.hash, recordedAt - 1n, 0b1n)).to.equal(false);
      expect(await registry.consentInForceAt(signed.hash, recordedAt, 0b10n)).to.equal(false);
      const unknown = ethers.id("unknown");
      expect(await registry.consentInForceAt(unknown, 0n, 0n)).to.equal(false);
      expect(await registry.consentInForceAt(unknown, recordedAt, 0n)).to.equal(false);
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

    it("pins the gas of a relayed recordConsent, revokeConsent and recordConsentV2", async function () {
      const { registry, operator, alice } = await loadFixture(gasFixture);

      // Operator relays a 65-byte EOA signature; first consent for this contributor (nonce 0 -> 1,
      // fresh record and active-consent slots).
      const signed = await signConsent(alice, registry);
      expect(ethers.dataLength(signed.signature)).to.equal(65);
      const recordReceipt = await (await registry.connect(operator).recordConsent(...consentArgs(signed))).wait();
      console.log(`      recordConsent ${recordReceipt.gasUsed}`);
      expect(recordReceipt.gasUsed).to.equal(151_329n);

      // Operator relays the revocation of that (active) consent: nonce 1 -> 2, active slot cleared.
      const revocation = await signRevocation(alice, registry, signed.hash);
      const revokeReceipt = await (await registry.connect(operator).revokeConsent(...revocationArgs(revocation))).wait();
      console.log(`      revokeConsent ${revokeReceipt.gasUsed}`);
      expect(revokeReceipt.gasUsed).to.equal(49_107n);

      // A consent with an end date, relayed: a fresh record whose second slot also holds
      // validUntil (no extra slot), plus the ConsentEndDate event. Cheaper than the first consent
      // above because the nonce and active-consent slots are no longer zero (2 -> 3, one hash to
      // another).
      const withEnd = await signConsentV2(alice, registry);
      const v2Receipt = await (await registry.connect(operator).recordConsentV2(...consentV2Args(withEnd))).wait();
      console.log(`      recordConsentV2 ${v2Receipt.gasUsed}`);
      expect(v2Receipt.gasUsed).to.equal(136_524n);
    });
  });
});
